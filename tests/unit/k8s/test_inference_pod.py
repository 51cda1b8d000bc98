"""InferenceService replica pod and client Service builders."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gpupool.k8s.bodies import ObjectRef
from gpupool.k8s.inference_pod import (
    ModelLocation,
    ReplicaSetSpec,
    client_service,
    model_location,
    replica_pod,
    selector_string,
    serving_port,
)
from gpupool_workloads.contract import DEFAULT_MODEL_MOUNT_ROOT
from gpupool_workloads.contract import ENV_MODEL_MOUNT_ROOT as ENV_MOUNT_ROOT

SERVICE = ObjectRef(
    api_version="gpupool.io/v1alpha1",
    kind="InferenceService",
    name="resnet",
    namespace="team-b",
    uid="uid-9",
)
OWNER = {
    "apiVersion": "gpupool.io/v1alpha1",
    "kind": "InferenceService",
    "name": "resnet",
    "uid": "uid-9",
    "controller": True,
    "blockOwnerDeletion": True,
}


def template() -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "resnet"}},
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": "gpupool/server:1",
                    "ports": [{"containerPort": 9000}],
                }
            ]
        },
    }


def replica_set(**overrides: Any) -> ReplicaSetSpec:
    base = ReplicaSetSpec(
        service=SERVICE,
        pool="a100",
        gpus_per_replica=1,
        gpu_fraction=None,
        gpu_memory_mib=None,
        model_uri="pvc://models/resnet50.pt",
        template=template(),
    )
    return replace(base, **overrides)


def test_whole_gpu_replica_pod() -> None:
    assert replica_pod(replica_set(), slot=2, node="n3", gpu_indices=(5,)) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "resnet-r2",
            "namespace": "team-b",
            "labels": {
                "app": "resnet",
                "gpupool.io/pool": "a100",
                "gpupool.io/inference-service": "resnet",
                "gpupool.io/role": "inference",
                "gpupool.io/replica": "2",
            },
            "annotations": {
                "gpupool.io/gpu-indices": "5",
                "gpupool.io/assigned-node": "n3",
            },
            "ownerReferences": [OWNER],
        },
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": "gpupool/server:1",
                    "ports": [{"containerPort": 9000}],
                    "env": [
                        {"name": "GPUPOOL_SERVICE", "value": "team-b/resnet"},
                        {"name": "GPUPOOL_REPLICA", "value": "2"},
                        {"name": "GPUPOOL_GPU_INDICES", "value": "5"},
                        {"name": "GPUPOOL_METRICS_PORT", "value": "9400"},
                        {"name": "GPUPOOL_SERVING_PORT", "value": "9000"},
                        {"name": "GPUPOOL_MODEL_URI", "value": "pvc://models/resnet50.pt"},
                        {"name": "GPUPOOL_MODEL_PATH", "value": "/mnt/models/models/resnet50.pt"},
                        {"name": "GPUPOOL_MODEL_MOUNT_ROOT", "value": "/mnt/models"},
                    ],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                    "volumeMounts": [
                        {
                            "name": "gpupool-model",
                            "mountPath": "/mnt/models/models",
                            "readOnly": True,
                        }
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "gpupool-model",
                    "persistentVolumeClaim": {"claimName": "models", "readOnly": True},
                }
            ],
            "schedulerName": "gpupool",
            "terminationGracePeriodSeconds": 30,
        },
    }


def test_fractional_replica_has_no_gpu_limit_and_records_its_share() -> None:
    shared = replica_set(gpus_per_replica=0, gpu_fraction=0.5, gpu_memory_mib=12000)
    pod = replica_pod(shared, slot=0, node="n1", gpu_indices=(3,))
    server = pod["spec"]["containers"][0]
    assert "resources" not in server
    assert pod["metadata"]["annotations"] == {
        "gpupool.io/gpu-indices": "3",
        "gpupool.io/assigned-node": "n1",
        "gpupool.io/gpu-fraction": "0.5",
        "gpupool.io/gpu-memory-mib": "12000",
    }
    assert {"name": "GPUPOOL_GPU_MEMORY_MIB", "value": "12000"} in server["env"]


def test_client_service_selects_replicas_on_the_serving_port() -> None:
    assert client_service(replica_set()) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "resnet",
            "namespace": "team-b",
            "labels": {"gpupool.io/pool": "a100", "gpupool.io/inference-service": "resnet"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {
                "gpupool.io/inference-service": "resnet",
                "gpupool.io/role": "inference",
            },
            "ports": [{"name": "http", "port": 9000, "targetPort": 9000, "protocol": "TCP"}],
        },
    }


def test_selector_string_matches_the_pod_labels() -> None:
    labels = replica_pod(replica_set(), slot=0, node="n", gpu_indices=(0,))["metadata"]["labels"]
    pairs = dict(item.split("=") for item in selector_string("resnet").split(","))
    assert pairs.items() <= labels.items()


@pytest.mark.parametrize(
    ("tpl", "port"),
    [
        ({}, 8080),
        ({"spec": {"containers": [{"name": "s"}]}}, 8080),
        ({"spec": {"containers": [{"name": "s", "ports": [{"containerPort": 7000}]}]}}, 7000),
    ],
)
def test_serving_port(tpl: dict[str, Any], port: int) -> None:
    assert serving_port(tpl) == port


@pytest.mark.parametrize(
    ("uri", "location"),
    [
        (None, None),
        (
            "pvc://m/a/b.pt",
            ModelLocation(uri="pvc://m/a/b.pt", path="/mnt/models/m/a/b.pt", claim="m"),
        ),
        (
            "file:///data/m.pt",
            ModelLocation(uri="file:///data/m.pt", path="/data/m.pt", claim=None),
        ),
        ("s3://bucket/m.pt", ModelLocation(uri="s3://bucket/m.pt", path=None, claim=None)),
    ],
)
def test_model_location(uri: str | None, location: ModelLocation | None) -> None:
    assert model_location(uri) == location


def test_the_model_claim_is_mounted_where_the_server_reads_pvc_uris() -> None:
    """The server reads ``pvc://CLAIM/PATH`` at ``<mount root>/CLAIM/PATH``."""
    pod = replica_pod(
        replica_set(model_uri="pvc://team-models/resnet/v3"), slot=0, node="n", gpu_indices=(0,)
    )
    server = pod["spec"]["containers"][0]
    env = {entry["name"]: entry["value"] for entry in server["env"]}
    loader = pytest.importorskip("gpupool_workloads.server.loader")  # imports torch
    served_from = loader.resolve_model_path(
        env["GPUPOOL_MODEL_URI"], mount_root=env[ENV_MOUNT_ROOT]
    )
    assert server["volumeMounts"] == [
        {"name": "gpupool-model", "mountPath": "/mnt/models/team-models", "readOnly": True}
    ]
    assert pod["spec"]["volumes"] == [
        {
            "name": "gpupool-model",
            "persistentVolumeClaim": {"claimName": "team-models", "readOnly": True},
        }
    ]
    assert served_from == Path("/mnt/models/team-models/resnet/v3")
    assert DEFAULT_MODEL_MOUNT_ROOT == "/mnt/models"  # also the server's own default


def test_a_template_mount_at_the_claim_path_is_kept_alone() -> None:
    tpl = template()
    tpl["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "mine", "mountPath": "/mnt/models/models"}
    ]
    tpl["spec"]["volumes"] = [{"name": "mine", "emptyDir": {}}]
    pod = replica_pod(replica_set(template=tpl), slot=0, node="n", gpu_indices=(0,))
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "mine", "mountPath": "/mnt/models/models"}
    ]
    assert pod["spec"]["volumes"] == [{"name": "mine", "emptyDir": {}}]


def test_other_uris_mount_nothing() -> None:
    pod = replica_pod(replica_set(model_uri="s3://b/m.pt"), slot=0, node="n", gpu_indices=(0,))
    assert "volumes" not in pod["spec"]
    assert "volumeMounts" not in pod["spec"]["containers"][0]
