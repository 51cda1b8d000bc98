"""A 2 x 8-GPU gang lands on two nodes at once or not at all, with one torchrun world."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import operator_env, scenario, wait_for, worker_env


def test_gang_waits_whole_then_lands_on_two_nodes_with_a_consistent_torchrun_world(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    tenants = [{"namespace": "ml", "guaranteedGPUs": 16}]
    with scenario(kubectl, operator_env(cluster_env), tmp_path, nodes=2, tenants=tenants) as sc:
        ns = sc.ns("ml")
        # A 1-GPU job holds node capacity, so the 16-GPU gang can not fit yet.
        sc.submit("blocker", tenant="ml", gpus=1, complete_after="12s")
        sc.wait_phase("blocker", "ml", "Running", timeout=60)
        sc.submit("gang", tenant="ml", replicas=2, gpus=8, complete_after="8s")

        # While it waits, not a single pod of the gang exists (all or nothing).
        waiting = sc.wait_phase("gang", "ml", "Queued", timeout=30)
        assert "needs 16 GPUs" in waiting["message"], waiting
        for _ in range(8):
            assert sc.pods(ns, job="gang") == []
            if sc.status("blocker", "ml").get("phase") == "Succeeded":
                break
            wait_for(lambda: True, timeout=1, expected="a tick")

        running = sc.wait_phase("gang", "ml", "Running", timeout=60)
        pods = sc.pods(ns, job="gang")
        assert len(pods) == 2
        nodes = {pod["spec"]["nodeName"] for pod in pods}
        assert nodes == set(sc.node_names), "one replica per node"
        assert {entry["node"] for entry in running["placement"]} == nodes

        envs = sorted((worker_env(pod) for pod in pods), key=lambda env: env["NODE_RANK"])
        assert [env["NODE_RANK"] for env in envs] == ["0", "1"]
        assert {env["WORLD_SIZE"] for env in envs} == {"2"}
        assert {env["MASTER_PORT"] for env in envs} == {"29500"}
        assert {env["NPROC_PER_NODE"] for env in envs} == {"8"}
        master = {env["MASTER_ADDR"] for env in envs}
        assert master == {f"gang-0-w0.gang-workers.{ns}.svc"}
        for pod in pods:
            indices = pod["metadata"]["annotations"]["gpupool.io/gpu-indices"].split(",")
            assert len(indices) == 8
            assert pod["spec"]["schedulerName"] == "gpupool"
            owner = pod["metadata"]["ownerReferences"][0]
            assert owner["kind"] == "TrainingJob" and owner["controller"] is True
            limits = pod["spec"]["containers"][0]["resources"]["limits"]
            assert limits["nvidia.com/gpu"] == "8"
        service = sc.get("service", "gang-workers", ns)
        assert service is not None and service["spec"]["clusterIP"] == "None"

        # Both replicas were bound in the same cycle: their start times are close.
        starts = sorted(pod["status"]["startTime"] for pod in pods)
        assert starts[0][:16] == starts[-1][:16], starts

        done = sc.wait_phase("gang", "ml", "Succeeded", timeout=60)
        assert done["completionTime"]
        reasons = [event["reason"] for event in sc.events(ns, "gang")]
        assert {"Scheduled", "Running", "Succeeded"} <= set(reasons), reasons


def test_deleting_a_running_job_removes_its_pods(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    tenants = [{"namespace": "ml", "guaranteedGPUs": 8}]
    with scenario(kubectl, operator_env(cluster_env), tmp_path, nodes=1, tenants=tenants) as sc:
        ns = sc.ns("ml")
        sc.submit("doomed", tenant="ml", replicas=1, gpus=4)
        sc.wait_phase("doomed", "ml", "Running", timeout=60)
        assert len(sc.pods(ns, job="doomed")) == 1
        kubectl("delete", "trainingjob", "doomed", "-n", ns, "--wait=false")
        wait_for(
            lambda: sc.pods(ns, job="doomed") == [],
            timeout=60,
            expected="the job's pods to be garbage-collected",
        )
