"""``kill -9`` of the operator in the middle of scheduling a burst of 50 jobs, then a
restart: no duplicate pods, no lost jobs, all finish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import job_manifest, operator_env, scenario, wait_for

JOBS = 50


def test_kill_9_mid_burst_then_restart_loses_nothing_and_duplicates_nothing(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    tenants = [{"namespace": "burst", "guaranteedGPUs": 32}]
    with scenario(kubectl, operator_env(cluster_env), tmp_path, nodes=4, tenants=tenants) as sc:
        ns = sc.ns("burst")
        burst = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                job_manifest(
                    f"b{index:02d}",
                    namespace=ns,
                    pool=sc.pool,
                    replicas=1 + index % 2,
                    gpus=2,
                    complete_after=f"{4 + index % 5}s",
                )
                for index in range(JOBS)
            ],
        }
        sc.apply(burst)

        def some_pods() -> bool:
            return len(sc.pods(ns)) >= 6

        wait_for(some_pods, timeout=60, expected="the operator to start placing the burst")
        sc.kill_operator()  # SIGKILL: no cleanup, the Lease stays held until it expires
        assert sc.operator is not None and sc.operator.returncode == -9

        sc.start_operator()

        def all_done() -> list[dict[str, Any]] | None:
            jobs = [
                job
                for job in sc.kubectl_json("get", "trainingjobs", "-n", ns)["items"]
                if (job.get("status") or {}).get("phase") == "Succeeded"
            ]
            return jobs if len(jobs) == JOBS else None

        wait_for(all_done, timeout=240, expected=f"all {JOBS} jobs to succeed")

        pods = sc.pods(ns)
        names = [pod["metadata"]["name"] for pod in pods]
        assert len(names) == len(set(names))
        per_job: dict[str, list[str]] = {}
        for pod in pods:
            per_job.setdefault(pod["metadata"]["labels"]["gpupool.io/job"], []).append(
                pod["metadata"]["name"]
            )
        assert len(per_job) == JOBS, "every job ran"
        for index in range(JOBS):
            replicas = 1 + index % 2
            expected = sorted(f"b{index:02d}-0-w{r}" for r in range(replicas))
            assert sorted(per_job[f"b{index:02d}"]) == expected, "one pod per replica, once"


def test_two_replicas_one_leader_and_the_follower_takes_over_when_it_dies(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    tenants = [{"namespace": "ha", "guaranteedGPUs": 16}]
    with scenario(kubectl, operator_env(cluster_env), tmp_path, nodes=2, tenants=tenants) as sc:
        sc.start_operator(identity="op-2")
        first = wait_for(sc.lease_holder, timeout=30, expected="a lease holder")
        assert first in sc.replicas
        for index in range(4):
            sc.submit(f"a{index}", tenant="ha", gpus=2, complete_after="300s")
        for index in range(4):
            sc.wait_phase(f"a{index}", "ha", "Running", timeout=60)
        follower_log = next(
            log
            for log, identity in zip(sc.operator_logs, sc.replicas, strict=True)
            if identity != first
        )
        assert "bound" not in follower_log.read_text(), "the follower never schedules"

        sc.kill_operator(identity=first)
        second = wait_for(
            lambda: (holder := sc.lease_holder()) not in (None, first) and holder,
            timeout=30,
            expected="the follower to take the lease",
        )
        sc.submit("after", tenant="ha", gpus=2, complete_after="300s")
        sc.wait_phase("after", "ha", "Running", timeout=60)
        assert second != first
        names = [pod["metadata"]["name"] for pod in sc.pods(sc.ns("ha"))]
        assert sorted(names) == sorted([*(f"a{i}-0-w0" for i in range(4)), "after-0-w0"])
