"""Lifecycles on the real control plane: failed workers restart the whole gang up to
``maxRestarts``; ``ttlSecondsAfterFinished``; an InferenceService scales through the scale
subresource and keeps a Service in front of its ready replicas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import job_manifest, operator_env, scenario, wait_for


def test_failing_workers_restart_the_gang_then_the_job_fails_with_a_reason(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    tenants = [{"namespace": "flaky", "guaranteedGPUs": 16}]
    with scenario(kubectl, operator_env(cluster_env), tmp_path, nodes=2, tenants=tenants) as sc:
        ns = sc.ns("flaky")
        manifest = job_manifest(
            "crashy",
            namespace=ns,
            pool=sc.pool,
            replicas=2,
            gpus=4,
            complete_after=None,
            extra_annotations={"gpupool.io/fail-after": "2s", "gpupool.io/exit-code": "3"},
        )
        manifest["spec"]["failurePolicy"] = {"maxRestarts": 1}
        sc.apply(manifest)

        failed = sc.wait_phase("crashy", "flaky", "Failed", timeout=90)
        assert failed["restarts"] == 1
        assert "exited with code 3" in failed["message"]
        assert "gave up after 1 restarts" in failed["message"]
        names = sorted(pod["metadata"]["name"] for pod in sc.pods(ns, job="crashy"))
        # attempt 0's pods were removed on restart; attempt 1's remain for their logs
        assert names == ["crashy-1-w0", "crashy-1-w1"]
        reasons = [event["reason"] for event in sc.events(ns, "crashy")]
        assert "GangRestart" in reasons and "Failed" in reasons, reasons


def test_finished_job_is_deleted_after_its_ttl(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    tenants = [{"namespace": "tidy", "guaranteedGPUs": 8}]
    with scenario(kubectl, operator_env(cluster_env), tmp_path, nodes=1, tenants=tenants) as sc:
        ns = sc.ns("tidy")
        manifest = job_manifest("brief", namespace=ns, pool=sc.pool, gpus=1, complete_after="2s")
        manifest["spec"]["ttlSecondsAfterFinished"] = 3
        sc.apply(manifest)
        sc.wait_phase("brief", "tidy", "Succeeded", timeout=60)
        wait_for(
            lambda: sc.get("trainingjob", "brief", ns) is None,
            timeout=30,
            expected="the finished job to be deleted after its TTL",
        )
        wait_for(lambda: sc.pods(ns) == [], timeout=60, expected="its pods to be collected")


def service_manifest(namespace: str, pool: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "chat", "namespace": namespace},
        "spec": {
            "pool": pool,
            "priorityClass": "high",
            "replicas": replicas,
            "minReplicas": 1,
            "maxReplicas": 4,
            "gpusPerReplica": 1,
            "model": {"uri": "pvc://models/chat.pt"},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "gpupool/workloads:dev",
                            "ports": [{"containerPort": 8080}],
                        }
                    ]
                }
            },
        },
    }


def test_inference_service_scales_through_the_scale_subresource(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    tenants = [{"namespace": "serve", "guaranteedGPUs": 8}]
    with scenario(kubectl, operator_env(cluster_env), tmp_path, nodes=2, tenants=tenants) as sc:
        ns = sc.ns("serve")
        sc.apply(service_manifest(ns, sc.pool, replicas=2))

        def ready(count: int) -> dict[str, Any] | None:
            found = sc.get("inferenceservice", "chat", ns) or {}
            status = found.get("status") or {}
            live = [p for p in sc.pods(ns) if not p["metadata"].get("deletionTimestamp")]
            if status.get("readyReplicas") == count and len(live) == count:
                return status
            return None

        status = wait_for(lambda: ready(2), timeout=60, expected="2 ready replicas")
        assert status["selector"] == "gpupool.io/inference-service=chat,gpupool.io/role=inference"
        assert status["url"] == f"http://chat.{ns}.svc:8080"
        nodes = {entry["node"] for entry in status["placement"]}
        assert len(nodes) == 2, "replicas spread over nodes"
        service = sc.get("service", "chat", ns)
        assert service is not None
        assert service["spec"]["selector"] == {
            "gpupool.io/inference-service": "chat",
            "gpupool.io/role": "inference",
        }
        pod = sc.pods(ns)[0]
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["GPUPOOL_MODEL_PATH"] == "/mnt/models/models/chat.pt"

        kubectl("scale", "inferenceservice", "chat", "-n", ns, "--replicas=3")
        wait_for(lambda: ready(3), timeout=60, expected="3 ready replicas after scale up")
        scale = sc.kubectl_json(
            "get",
            "--raw",
            f"/apis/gpupool.io/v1alpha1/namespaces/{ns}/inferenceservices/chat/scale",
        )
        assert scale["status"]["replicas"] == 3

        kubectl("scale", "inferenceservice", "chat", "-n", ns, "--replicas=1")
        wait_for(lambda: ready(1), timeout=60, expected="1 ready replica after scale down")
