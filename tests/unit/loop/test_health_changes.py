"""Telemetry-driven decisions in words: eviction Events, waiting messages, pool status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpupool.k8s.timestamps import rfc3339
from gpupool.loop.actions import Change, DeletePod
from gpupool.loop.context import CycleContext
from gpupool.loop.job_lifecycle import job_lifecycle
from gpupool.loop.plan import plan_changes
from gpupool.loop.pool_status import pool_status
from gpupool.scheduling.cycle import run_cycle
from gpupool.state.cache import PoolView
from gpupool.state.records import JobRecord
from gpupool.state.snapshot import SnapshotSettings, build_snapshot
from tests.unit.state.bodies import T0, job, pod_body
from tests.unit.state.telemetry_bodies import pool_view, reported_node
from tests.unit.telemetry.builders import gpu

NOW = T0 + 1000
FRESH = NOW - 2
XID_79 = "GPU 3 on node n1 unhealthy: XID 79 (GPU has fallen off the bus)"


def ctx(view: PoolView) -> CycleContext:
    return CycleContext(
        pool="a100",
        now=NOW,
        grace_period_s=120,
        pool_nodes=frozenset(node.name for node in view.nodes),
        reporting_instance="op",
    )


def cycle(*bodies: dict[str, Any]) -> tuple[dict[str, Change], dict[str, Any]]:
    """Changes per object name, and the pool status, after one decision."""
    view = pool_view(*bodies)
    built = build_snapshot(view, now=NOW, balances={}, settings=SnapshotSettings())
    decisions = run_cycle(built.snapshot, built.config)
    changes = plan_changes(view, built, decisions, ctx(view), credits_spent={})
    status = pool_status(
        view.pool, built, decisions, balances={}, now=NOW, raw_status=view.pool.raw_status
    )
    return {change.target.name: change for change in changes}, status


def running_big() -> list[dict[str, Any]]:
    scheduled = {
        "type": "Scheduled",
        "status": "True",
        "reason": "Placed",
        "message": "",
        "lastTransitionTime": rfc3339(T0),
    }
    body = (
        job("big")
        .gpus(8)
        .with_status(
            phase="Running",
            restarts=0,
            preemptions=0,
            placement=[{"replica": 0, "node": "n1", "gpus": list(range(8))}],
            conditions=[scheduled],
        )
        .body()
    )
    return [body, pod_body("big-0-w0", owner="big", node="n1", gpus="0,1,2,3,4,5,6,7")]


def faulty_n1() -> dict[str, Any]:
    gpus = [gpu(i, xid_history=(79,) if i == 3 else ()) for i in range(8)]
    return reported_node("n1", at=FRESH, gpus=gpus)


def condition(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in status["conditions"] if c["type"] == type_)
    return found


def test_a_gang_on_a_failed_gpu_restarts_with_an_event_that_names_gpu_node_and_xid() -> None:
    changes, _ = cycle(faulty_n1(), reported_node("n2", at=FRESH), *running_big())
    change = changes["big"]
    patch = change.status_patch
    assert patch is not None
    assert patch["phase"] == "Preempting"
    assert patch["restarts"] == 1, "a GPU failure is a whole-gang restart"
    assert "preemptions" not in patch, "nobody preempted it"
    assert patch["message"] == (
        f"{XID_79}; restarting the whole gang from its last checkpoint on healthy GPUs (restart 1)"
    )
    assert condition(patch, "Preempting")["reason"] == "UnhealthyGPU"
    [event] = change.events
    assert (event["type"], event["reason"]) == ("Warning", "UnhealthyGPU")
    assert event["message"].startswith(XID_79)
    assert change.writes == (
        DeletePod(namespace="team-a", name="big-0-w0", uid="pod-big-0-w0", grace_period_s=0),
    )


def test_the_released_gang_is_requeued_as_a_restart_not_a_preemption() -> None:
    changes, _ = cycle(faulty_n1(), reported_node("n2", at=FRESH), *running_big())
    evicted = changes["big"].assumed
    assert isinstance(evicted, JobRecord)
    view = pool_view(reported_node("n1", at=FRESH), reported_node("n2", at=FRESH))
    requeue = job_lifecycle(evicted, (), ctx(view))
    assert requeue is not None and requeue.status_patch is not None
    assert requeue.status_patch["phase"] == "Queued"
    assert requeue.status_patch["message"].startswith("requeued for gang restart 1;")


def test_pool_status_counts_the_failed_gpu_out_and_says_why() -> None:
    _, status = cycle(faulty_n1(), reported_node("n2", at=FRESH))
    assert status["gpus"]["total"] == 16
    assert status["gpus"]["healthy"] == 15
    degraded = condition(status, "Degraded")
    assert degraded["status"] == "True"
    assert degraded["reason"] == "GPUsUnhealthy"
    assert degraded["message"] == XID_79

    _, healthy = cycle(reported_node("n1", at=FRESH), reported_node("n2", at=FRESH))
    assert healthy["gpus"]["healthy"] == 16
    assert condition(healthy, "Degraded")["status"] == "False"


def test_a_stale_node_is_named_in_pool_status_and_in_the_waiting_message() -> None:
    silent_since = NOW - 200
    stale = (
        "node n1: telemetry stale: no report from the gpupool node agent since "
        f"{rfc3339(silent_since)} (deadline 90s)"
    )
    changes, status = cycle(reported_node("n1", at=silent_since), job("wait").gpus(8).body())
    assert status["gpus"]["healthy"] == 0
    degraded = condition(status, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "NodesUnavailable")
    assert degraded["message"] == stale
    patch = changes["wait"].status_patch
    assert patch is not None and patch["phase"] == "Queued"
    assert patch["message"].endswith(f"; out of the pool: {stale}")


def test_reasons_that_capacity_does_not_explain_get_no_note() -> None:
    over_max = job("huge").gpus(8).replicas(5).body()  # team-a's maxGPUs is 32
    changes, _ = cycle(reported_node("n1", at=NOW - 200), reported_node("n2", at=FRESH), over_max)
    patch = changes["huge"].status_patch
    assert patch is not None
    assert patch["message"] == "needs 40 GPUs, tenant at its maxGPUs ceiling"
