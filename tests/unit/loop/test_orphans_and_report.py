"""Unknown pools are explained once; ``gpupool status`` tables."""

from __future__ import annotations

from gpupool.loop.orphans import orphan_changes
from gpupool.loop.status import patched_job
from gpupool.state.parse import parse_job
from gpupool.status_report import render
from tests.unit.state.bodies import T0, job, pool_body


def test_a_job_for_a_missing_pool_gets_one_condition_and_event() -> None:
    record = parse_job(job("lost").pool("nowhere").body())
    [change] = orphan_changes(
        [record], pool_exists=lambda name: False, now=T0, reporting_instance="op"
    )
    assert change.status_patch is not None
    [condition] = change.status_patch["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Admitted",
        "False",
        "UnknownPool",
    )
    assert [e["reason"] for e in change.events] == ["UnknownPool"]
    settled = patched_job(record, change.status_patch)
    assert (
        orphan_changes([settled], pool_exists=lambda n: False, now=T0 + 9, reporting_instance="op")
        == []
    )
    assert (
        orphan_changes([record], pool_exists=lambda n: True, now=T0, reporting_instance="op") == []
    )


def test_status_report_shows_pools_tenants_and_why_jobs_wait() -> None:
    pool = pool_body(
        status={
            "nodes": 2,
            "gpus": {"total": 16, "healthy": 16, "allocated": 8, "idle": 8},
            "clearingPricePerGPUHour": 0.75,
            "tenants": [
                {
                    "namespace": "team-a",
                    "allocatedGPUs": 8,
                    "borrowedGPUs": 0,
                    "credits": 12.5,
                    "pending": 1,
                }
            ],
        }
    )
    running = (
        job("run")
        .gpus(8)
        .with_status(
            phase="Running",
            pricePerGPUHour=0.75,
            placement=[{"replica": 0, "node": "n1", "gpus": list(range(8))}],
        )
        .body()
    )
    waiting = (
        job("wait")
        .gpus(8)
        .replicas(2)
        .with_status(
            phase="Queued", queuePosition=1, message="needs 16 GPUs, 8 free at tier normal"
        )
        .body()
    )
    text = render([pool], [waiting, running], [], pool="a100")
    lines = text.splitlines()
    assert lines[0].split() == ["POOL", "NODES", "GPUS", "HEALTHY", "ALLOCATED", "IDLE", "PRICE"]
    assert lines[1].split() == ["a100", "2", "16", "16", "8", "8", "0.75"]
    assert any(line.split()[:2] == ["a100", "team-a"] and "12.5" in line for line in lines)
    workload_rows = [line for line in lines if line.startswith("team-a/")]
    assert workload_rows[0].startswith("team-a/run") and "n1:8" in workload_rows[0]
    assert workload_rows[1].startswith("team-a/wait")
    assert workload_rows[1].endswith("needs 16 GPUs, 8 free at tier normal")
