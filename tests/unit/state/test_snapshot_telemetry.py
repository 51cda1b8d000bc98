"""Node telemetry -> snapshot -> the core's decisions: health, staleness, memory, NVLink."""

from __future__ import annotations

from collections import Counter
from typing import Any

from gpupool.k8s.timestamps import rfc3339
from gpupool.scheduling.cycle import run_cycle
from gpupool.scheduling.decisions import Decisions, PreemptionCause, WaitCode
from gpupool.scheduling.model import WorkloadUid
from gpupool.state.snapshot import BuiltSnapshot, SnapshotSettings, build_snapshot
from tests.unit.state.bodies import T0, job, node_body, service_body
from tests.unit.state.telemetry_bodies import pool_view, reported_node
from tests.unit.telemetry.builders import gpu

NOW = T0 + 1000
FRESH = NOW - 2
TOTAL_MIB = 81559


def running_on(name: str, node: str, gpus: list[int]) -> dict[str, Any]:
    condition = {
        "type": "Scheduled",
        "status": "True",
        "reason": "Placed",
        "message": "",
        "lastTransitionTime": rfc3339(T0),
    }
    return (
        job(name)
        .gpus(len(gpus))
        .with_status(
            phase="Running",
            placement=[{"replica": 0, "node": node, "gpus": gpus}],
            conditions=[condition],
        )
        .body()
    )


def decide(
    *bodies: dict[str, Any], settings: SnapshotSettings | None = None
) -> tuple[BuiltSnapshot, Decisions]:
    built = build_snapshot(
        pool_view(*bodies), now=NOW, balances={}, settings=settings or SnapshotSettings()
    )
    return built, run_cycle(built.snapshot, built.config)


def bound_gpus(decisions: Decisions, name: str) -> list[tuple[str, int]]:
    placement = decisions.bindings[WorkloadUid(f"uid-{name}")]
    return [(str(r.node), index) for r in placement for index in r.gpu_indices]


def xid_79_on_gpu_3(node: str) -> dict[str, Any]:
    gpus = [gpu(i, xid_history=(79,) if i == 3 else ()) for i in range(8)]
    return reported_node(node, at=FRESH, gpus=gpus)


# -- unhealthy GPUs ---------------------------------------------------------------------


def test_an_xid_79_gpu_is_named_and_evicts_the_gang_on_it_at_once() -> None:
    built, decisions = decide(
        xid_79_on_gpu_3("n1"),
        reported_node("n2", at=FRESH),
        running_on("big", "n1", list(range(8))),
    )
    assert built.gpu_problems == {("n1", 3): "XID 79 (GPU has fallen off the bus)"}
    assert built.node_problems == {}
    eviction = decisions.preemptions[WorkloadUid("uid-big")]
    assert eviction.cause is PreemptionCause.UNHEALTHY_GPU
    assert eviction.grace_deadline == NOW, "the GPU is gone: no grace period"


def test_the_requeued_gang_lands_on_healthy_gpus_only() -> None:
    _, decisions = decide(
        xid_79_on_gpu_3("n1"), reported_node("n2", at=FRESH), job("big").gpus(8).body()
    )
    assert bound_gpus(decisions, "big") == [("n2", index) for index in range(8)]

    _, alone = decide(xid_79_on_gpu_3("n1"), job("big").gpus(8).body())
    assert WorkloadUid("uid-big") not in alone.bindings
    assert alone.waiting[WorkloadUid("uid-big")].code is WaitCode.TOO_LARGE, "7 usable < 8"


def test_thresholds_come_from_the_pool_and_other_gpus_stay_usable() -> None:
    hot = [gpu(i, temperature_c=95.0 if i == 5 else 40.0) for i in range(8)]
    built, decisions = decide(reported_node("n1", at=FRESH, gpus=hot), job("seven").gpus(7).body())
    assert built.gpu_problems == {("n1", 5): "temperature 95C > 90C"}
    assert ("n1", 5) not in bound_gpus(decisions, "seven")
    assert len(bound_gpus(decisions, "seven")) == 7


# -- stale telemetry ------------------------------------------------------------------


def test_stale_telemetry_cordons_the_node_but_keeps_its_running_work() -> None:
    silent_since = NOW - 200
    built, decisions = decide(
        reported_node("n1", at=silent_since),
        reported_node("n2", at=FRESH),
        running_on("old", "n1", [0, 1, 2, 3]),
        job("new").gpus(4).body(),
    )
    assert built.node_problems == {
        "n1": "telemetry stale: no report from the gpupool node agent since "
        f"{rfc3339(silent_since)} (deadline 90s)"
    }
    nodes = {str(node.name): node for node in built.snapshot.nodes}
    assert not nodes["n1"].schedulable and nodes["n2"].schedulable
    assert all(g.healthy for g in nodes["n1"].gpus), "silence is not a GPU failure"
    assert decisions.preemptions == {}, "running work stays on a silent node"
    assert {node for node, _ in bound_gpus(decisions, "new")} == {"n2"}


def test_nothing_new_lands_on_a_stale_node_and_the_deadline_is_a_setting() -> None:
    stale_only = (reported_node("n1", at=NOW - 200), job("new").gpus(4).body())
    _, decisions = decide(*stale_only)
    assert decisions.bindings == {}
    assert decisions.waiting[WorkloadUid("uid-new")].code is WaitCode.TOO_LARGE

    built, relaxed = decide(*stale_only, settings=SnapshotSettings(telemetry_stale_after_s=300))
    assert built.node_problems == {}
    assert WorkloadUid("uid-new") in relaxed.bindings


def test_an_unreadable_report_is_a_node_problem_when_telemetry_is_required() -> None:
    broken = node_body("n1", annotations={"gpupool.io/telemetry": "{not json"})
    built, _ = decide(broken, settings=SnapshotSettings(require_telemetry=True))
    assert built.node_problems["n1"].startswith("telemetry unreadable: ")


# -- fractional replicas and measured memory -------------------------------------------


def shared_gpus(free_mib: list[int]) -> dict[str, Any]:
    gpus = [
        gpu(i, memory_free_mib=free, memory_used_mib=TOTAL_MIB - free)
        for i, free in enumerate(free_mib)
    ]
    return reported_node("n1", at=FRESH, gpus=gpus)


def share_counts(decisions: Decisions, name: str) -> Counter[int]:
    return Counter(index for _, index in bound_gpus(decisions, name))


def test_fractional_replicas_are_packed_by_measured_free_memory() -> None:
    # GPU 0 has 19,000 MiB free (something else uses the rest): no 20,000 MiB replica fits.
    node = shared_gpus([19_000, 45_000])
    _, decisions = decide(node, service_body("llm", replicas=2, gpus=0.1, memory_mib=20_000))
    assert share_counts(decisions, "llm") == {1: 2}


def test_fractional_replicas_never_exceed_measured_free_memory() -> None:
    free = [19_000, 45_000]
    _, decisions = decide(
        shared_gpus(free), service_body("llm", replicas=6, gpus=0.1, memory_mib=20_000)
    )
    placed = share_counts(decisions, "llm")
    assert placed, "some replicas fit"
    for index, count in placed.items():
        assert count * 20_000 <= free[index]
    # Compute shares alone (0.1 each) would have allowed all six; only memory stops them.
    _, unmeasured = decide(
        node_body("n1", gpus=2), service_body("llm", replicas=6, gpus=0.1, memory_mib=20_000)
    )
    assert sum(share_counts(unmeasured, "llm").values()) == 6


# -- NVLink domains ---------------------------------------------------------------------


def two_islands(*, nvlink: bool) -> dict[str, Any]:
    """GPUs 0-3 and 4-7 are two NVLink islands (or no NVLink at all)."""
    gpus = [
        gpu(i, nvlink_domain=(0 if i < 4 else 4) if nvlink else None, nvlink_peers=())
        for i in range(8)
    ]
    return reported_node("n1", at=FRESH, gpus=gpus)


def test_a_replica_stays_inside_one_nvlink_domain() -> None:
    holder = running_on("holder", "n1", [0, 4])
    _, decisions = decide(two_islands(nvlink=True), holder, job("trio").gpus(3).body())
    assert set(index for _, index in bound_gpus(decisions, "trio")) in ({1, 2, 3}, {5, 6, 7})


def test_nvlink_islands_from_telemetry_decide_whether_a_replica_fits() -> None:
    holder = running_on("holder", "n1", [0, 4])
    quad = job("quad").gpus(4).body()
    _, split = decide(two_islands(nvlink=True), holder, quad)
    assert WorkloadUid("uid-quad") not in split.bindings, "6 GPUs free, no island of 4"
    assert split.waiting[WorkloadUid("uid-quad")].code is WaitCode.NO_PLACEMENT

    _, flat = decide(two_islands(nvlink=False), holder, quad)
    assert len(bound_gpus(flat, "quad")) == 4, "without NVLink any 4 free GPUs do"
