"""Hand-made decisions -> per-object changes (pure)."""

from __future__ import annotations

from typing import Any

from gpupool.loop.actions import BindPod, CreateObject, DeletePod
from gpupool.loop.context import CycleContext
from gpupool.loop.plan import plan_changes
from gpupool.scheduling.decisions import (
    Decisions,
    Preemption,
    PreemptionCause,
    WaitCode,
    WaitingReason,
)
from gpupool.scheduling.model import NodeName, ReplicaPlacement, Tier, WorkloadUid
from gpupool.state.cache import ClusterCache
from gpupool.state.parse import parse_job, parse_pod, parse_pool, parse_service
from gpupool.state.records import PoolRecord
from gpupool.state.snapshot import build_snapshot
from tests.unit.state.bodies import T0, job, pod_body, pool_body, service_body

NOW = T0 + 500
CTX = CycleContext(
    pool="a100",
    now=NOW,
    grace_period_s=120,
    pool_nodes=frozenset({"n1", "n2"}),
    reporting_instance="op",
)


def decisions(**fields: Any) -> Decisions:
    base: dict[str, Any] = {
        "now": NOW,
        "bindings": {},
        "preemptions": {},
        "clearing_price_per_gpu_hour": 0.5,
        "prices": {},
        "bids": {},
        "waiting": {},
        "queue_positions": {},
    }
    return Decisions(**{**base, **fields})


def plan(bodies: list[dict[str, Any]], made: Decisions) -> list[Any]:
    cache = ClusterCache()
    pool = parse_pool(pool_body())
    assert isinstance(pool, PoolRecord)
    cache.upsert_pool(pool)
    for body in bodies:
        if body["kind"] == "TrainingJob":
            cache.upsert_job(parse_job(body))
        elif body["kind"] == "InferenceService":
            cache.upsert_service(parse_service(body))
        else:
            record = parse_pod(body)
            assert record is not None
            cache.upsert_pod(record)
    view = cache.pool_view("a100")
    assert view is not None
    built = build_snapshot(view, now=NOW, balances={})
    return plan_changes(view, built, made, CTX, credits_spent={})


def placement(*nodes: str, gpus: tuple[int, ...] = (0, 1)) -> tuple[ReplicaPlacement, ...]:
    return tuple(ReplicaPlacement(node=NodeName(n), gpu_indices=gpus) for n in nodes)


def test_a_binding_records_the_placement_then_launches_the_gang() -> None:
    uid = WorkloadUid("uid-bert")
    [change] = plan(
        [job("bert").gpus(2).replicas(2).bid(2.0).body()],
        decisions(bindings={uid: placement("n1", "n2")}, prices={uid: 0.5}, bids={uid: 2.0}),
    )
    patch = change.status_patch
    assert patch["phase"] == "Scheduled"
    assert patch["placement"] == [
        {"replica": 0, "node": "n1", "gpus": [0, 1]},
        {"replica": 1, "node": "n2", "gpus": [0, 1]},
    ]
    assert patch["pricePerGPUHour"] == 0.5 and patch["allocatedGPUs"] == 4
    kinds = [
        w.manifest["kind"] if isinstance(w, CreateObject) else type(w).__name__
        for w in change.writes
    ]
    assert kinds == ["Service", "Pod", "Pod", "BindPod", "BindPod"]
    assert change.writes[-1] == BindPod(namespace="team-a", name="bert-0-w1", node="n2")
    assert [e["reason"] for e in change.events] == ["Scheduled"]
    assert change.assumed is not None and change.assumed.status.phase == "Scheduled"


def test_a_preemption_stops_pods_with_the_remaining_grace() -> None:
    uid = WorkloadUid("uid-low")
    running = (
        job("low")
        .gpus(2)
        .with_status(phase="Running", placement=[{"replica": 0, "node": "n1", "gpus": [0, 1]}])
        .body()
    )
    pod = pod_body("low-0-w0", owner="low", node="n1", gpus="0,1")
    preemption = Preemption(
        uid=uid,
        cause=PreemptionCause.HIGHER_TIER,
        reason="make room for team-a/x",
        grace_deadline=NOW + 90.4,
    )
    [change] = plan([running, pod], decisions(preemptions={uid: preemption}))
    assert change.status_patch["phase"] == "Preempting"
    assert change.status_patch["preemptions"] == 1
    conditions = {c["type"]: c for c in change.status_patch["conditions"]}
    assert conditions["Preempting"]["reason"] == "HigherTier"
    assert change.writes == (
        DeletePod(namespace="team-a", name="low-0-w0", uid="pod-low-0-w0", grace_period_s=91),
    )
    assert change.events[0]["type"] == "Warning"


def test_waiting_jobs_get_the_core_reason_and_queue_position() -> None:
    uid = WorkloadUid("uid-wait")
    reason = WaitingReason(
        code=WaitCode.OUTBID,
        needed_gpus=16,
        free_gpus=4,
        tier=Tier.NORMAL,
        bid_per_gpu_hour=0.4,
        price_per_gpu_hour=0.9,
    )
    [change] = plan(
        [job("wait").gpus(8).replicas(2).body()],
        decisions(waiting={uid: reason}, queue_positions={uid: 3}),
    )
    assert change.status_patch["phase"] == "Queued"
    assert change.status_patch["message"] == (
        "needs 16 GPUs, 4 free at tier normal, bid 0.4 < price 0.9"
    )
    assert change.status_patch["queuePosition"] == 3
    assert [e["reason"] for e in change.events] == ["Queued"]


def test_a_bid_cut_by_credits_is_reported() -> None:
    uid = WorkloadUid("uid-rich")
    reason = WaitingReason(
        code=WaitCode.OUTBID,
        needed_gpus=8,
        free_gpus=0,
        tier=Tier.NORMAL,
        bid_per_gpu_hour=1.2,
        price_per_gpu_hour=2.0,
    )
    [change] = plan(
        [job("rich").gpus(8).bid(5.0).body()],
        decisions(waiting={uid: reason}, bids={uid: 1.2}, queue_positions={uid: 1}),
    )
    conditions = {c["type"]: c for c in change.status_patch["conditions"]}
    assert conditions["BidCapped"]["status"] == "True"
    assert "bid 5 capped to 1.2 by the credits of tenant team-a" in change.status_patch["message"]


def test_nothing_is_written_when_nothing_changed() -> None:
    uid = WorkloadUid("uid-same")
    reason = WaitingReason(
        code=WaitCode.NO_CAPACITY,
        needed_gpus=8,
        free_gpus=0,
        tier=Tier.NORMAL,
        bid_per_gpu_hour=0,
        price_per_gpu_hour=0,
    )
    made = decisions(waiting={uid: reason}, queue_positions={uid: 1})
    [first] = plan([job("same").gpus(8).body()], made)
    settled = job("same").gpus(8).with_status(**first.status_patch).body()
    assert plan([settled], made) == []


def test_a_scale_request_adds_replicas_in_free_slots() -> None:
    placed = {
        "placement": [{"replica": 0, "node": "n1", "gpus": [3]}],
        "conditions": [
            {
                "type": "Scheduled",
                "status": "True",
                "reason": "Placed",
                "message": "",
                "lastTransitionTime": "2025-06-15T15:06:40Z",
            }
        ],
    }
    body = service_body("chat", replicas=2, status=placed)
    pod = pod_body(
        "chat-r0",
        owner="chat",
        owner_kind="InferenceService",
        namespace="team-b",
        node="n1",
        gpus="3",
    )
    scale_uid = WorkloadUid("uid-chat+scale")
    [change] = plan([body, pod], decisions(bindings={scale_uid: placement("n2", gpus=(5,))}))
    assert change.status_patch["placement"] == [
        {"replica": 0, "node": "n1", "gpus": [3]},
        {"replica": 1, "node": "n2", "gpus": [5]},
    ]
    pods = [w for w in change.writes if isinstance(w, CreateObject)]
    assert [p.manifest["metadata"]["name"] for p in pods] == ["chat-r1"]
