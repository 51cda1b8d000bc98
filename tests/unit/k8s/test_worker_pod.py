"""Worker pod and rendezvous Service builders, checked by dict equality."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gpupool.k8s.bodies import ObjectRef
from gpupool.k8s.worker_pod import (
    CheckpointSettings,
    TorchSettings,
    WorkerGang,
    master_address,
    rendezvous_service,
    worker_pod,
    worker_pod_name,
)

JOB = ObjectRef(
    api_version="gpupool.io/v1alpha1",
    kind="TrainingJob",
    name="bert",
    namespace="team-a",
    uid="uid-1",
)
OWNER = {
    "apiVersion": "gpupool.io/v1alpha1",
    "kind": "TrainingJob",
    "name": "bert",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def template() -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {"app": "bert"},
            "annotations": {"gpupool.io/complete-after": "60s"},
        },
        "spec": {
            "containers": [
                {
                    "name": "trainer",
                    "image": "gpupool/trainer:1",
                    "env": [{"name": "LR", "value": "0.1"}, {"name": "WORLD_SIZE", "value": "9"}],
                    "resources": {"limits": {"cpu": "4"}},
                },
                {"name": "sidecar", "image": "busybox"},
            ],
            "restartPolicy": "Always",
            "nodeName": "someone-elses-choice",
        },
    }


def gang(**overrides: Any) -> WorkerGang:
    base = WorkerGang(
        job=JOB,
        pool="a100",
        replicas=2,
        gpus_per_replica=8,
        attempt=1,
        torch=TorchSettings(nproc_per_node=8, port=29500, backend="nccl"),
        checkpoint=CheckpointSettings(path="/ckpt", every_seconds=600),
        template=template(),
        termination_grace_period_s=120,
    )
    return replace(base, **overrides)


def test_worker_pod_is_built_from_the_template_with_the_torchrun_contract() -> None:
    pod = worker_pod(gang(), replica=1, node="node-7", gpu_indices=(0, 1, 2, 3, 4, 5, 6, 7))

    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "bert-1-w1",
            "namespace": "team-a",
            "labels": {
                "app": "bert",
                "gpupool.io/pool": "a100",
                "gpupool.io/job": "bert",
                "gpupool.io/role": "worker",
                "gpupool.io/replica": "1",
                "gpupool.io/attempt": "1",
            },
            "annotations": {
                "gpupool.io/complete-after": "60s",
                "gpupool.io/gpu-indices": "0,1,2,3,4,5,6,7",
                "gpupool.io/assigned-node": "node-7",
            },
            "ownerReferences": [OWNER],
        },
        "spec": {
            "containers": [
                {
                    "name": "trainer",
                    "image": "gpupool/trainer:1",
                    "env": [
                        {"name": "LR", "value": "0.1"},
                        {"name": "MASTER_ADDR", "value": "bert-1-w0.bert-workers.team-a.svc"},
                        {"name": "MASTER_PORT", "value": "29500"},
                        {"name": "WORLD_SIZE", "value": "2"},
                        {"name": "NODE_RANK", "value": "1"},
                        {"name": "NPROC_PER_NODE", "value": "8"},
                        {"name": "GPUPOOL_TORCH_BACKEND", "value": "nccl"},
                        {"name": "GPUPOOL_JOB", "value": "team-a/bert"},
                        {"name": "GPUPOOL_RESTART_COUNT", "value": "1"},
                        {"name": "GPUPOOL_METRICS_PORT", "value": "9400"},
                        {"name": "GPUPOOL_GPU_INDICES", "value": "0,1,2,3,4,5,6,7"},
                        {"name": "GPUPOOL_CHECKPOINT_DIR", "value": "/ckpt"},
                        {"name": "GPUPOOL_CHECKPOINT_EVERY_SECONDS", "value": "600"},
                    ],
                    "resources": {"limits": {"cpu": "4", "nvidia.com/gpu": "8"}},
                    "volumeMounts": [{"name": "gpupool-checkpoint", "mountPath": "/ckpt"}],
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                },
                {"name": "sidecar", "image": "busybox"},
            ],
            "volumes": [{"name": "gpupool-checkpoint", "emptyDir": {}}],
            "restartPolicy": "Never",
            "schedulerName": "gpupool",
            "hostname": "bert-1-w1",
            "subdomain": "bert-workers",
            "terminationGracePeriodSeconds": 120,
        },
    }


def test_builder_does_not_mutate_the_template() -> None:
    original = template()
    worker_pod(gang(template=original), replica=0, node="n", gpu_indices=(0,))
    assert original == template()


def test_a_template_volume_at_the_checkpoint_path_is_kept_and_nothing_is_added() -> None:
    tpl = template()
    tpl["spec"]["containers"][0]["volumeMounts"] = [{"name": "ckpt-pvc", "mountPath": "/ckpt"}]
    tpl["spec"]["volumes"] = [{"name": "ckpt-pvc", "persistentVolumeClaim": {"claimName": "c"}}]

    spec = worker_pod(gang(template=tpl), replica=0, node="n", gpu_indices=(0,))["spec"]

    assert spec["containers"][0]["volumeMounts"] == [{"name": "ckpt-pvc", "mountPath": "/ckpt"}]
    assert spec["volumes"] == [{"name": "ckpt-pvc", "persistentVolumeClaim": {"claimName": "c"}}]


def test_without_checkpoint_there_is_no_checkpoint_env_or_volume() -> None:
    pod = worker_pod(gang(checkpoint=None), replica=0, node="n", gpu_indices=(3,))
    env_names = {entry["name"] for entry in pod["spec"]["containers"][0]["env"]}
    assert "GPUPOOL_CHECKPOINT_DIR" not in env_names
    assert "volumes" not in pod["spec"]


def test_every_replica_agrees_on_master_and_world_size_and_ranks_are_distinct() -> None:
    the_gang = gang(replicas=4)
    pods = [worker_pod(the_gang, replica=r, node=f"n{r}", gpu_indices=(0,)) for r in range(4)]
    envs = [{e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]} for pod in pods]
    assert {env["MASTER_ADDR"] for env in envs} == {master_address(the_gang)}
    assert {env["WORLD_SIZE"] for env in envs} == {"4"}
    assert [env["NODE_RANK"] for env in envs] == ["0", "1", "2", "3"]


def test_attempts_give_distinct_pod_names() -> None:
    assert worker_pod_name(job="bert", attempt=0, replica=0) != worker_pod_name(
        job="bert", attempt=1, replica=0
    )


def test_long_and_dotted_job_names_still_give_valid_hostnames_and_labels() -> None:
    long_job = replace(JOB, name="a.b." + "x" * 70)
    pod = worker_pod(gang(job=long_job), replica=0, node="n", gpu_indices=(0,))
    assert len(pod["spec"]["hostname"]) <= 63
    assert "." not in pod["spec"]["hostname"]
    assert len(pod["spec"]["subdomain"]) <= 63
    assert len(pod["metadata"]["labels"]["gpupool.io/job"]) <= 63


def test_rendezvous_service_is_headless_and_selects_the_workers() -> None:
    assert rendezvous_service(gang()) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "bert-workers",
            "namespace": "team-a",
            "labels": {"gpupool.io/pool": "a100", "gpupool.io/job": "bert"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {"gpupool.io/job": "bert", "gpupool.io/role": "worker"},
            "ports": [
                {"name": "rendezvous", "port": 29500, "targetPort": 29500, "protocol": "TCP"}
            ],
        },
    }


def test_a_single_pod_gang_rendezvous_on_loopback_without_a_service() -> None:
    env = worker_pod(gang(replicas=1), replica=0, node="n", gpu_indices=(0,))["spec"]["containers"][
        0
    ]["env"]
    assert {"name": "MASTER_ADDR", "value": "127.0.0.1"} in env
