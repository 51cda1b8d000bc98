"""Facts carried from one cycle to the next change no decision: a cycle that finds them
decides exactly what a cycle that derives everything from scratch decides."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from sched_builders import every_decision

from gpupool.scheduling import (
    Decisions,
    FairnessAgentConfig,
    PoolConfig,
    Snapshot,
    Tenant,
    TenantName,
    Workload,
    WorkloadUid,
    run_cycle,
)
from gpupool.scheduling import cycle as cycle_module
from gpupool.scheduling.auction import Bidder
from gpupool.scheduling.capacity import ClusterState
from gpupool.scheduling.carried import CarriedFacts
from gpupool.sim.bench import evolve
from gpupool.sim.synthetic import ClusterSpec, make_snapshot


def _from_scratch(snapshot: Snapshot, config: PoolConfig) -> Decisions:
    cycle_module.forget_carried_facts()
    return run_cycle(snapshot, config)


CONFIGS = [
    PoolConfig(),
    PoolConfig(
        fairness=FairnessAgentConfig(aging_s=600.0, aging_requeued_only=False),
        credit_horizon_s=7200.0,
    ),
    PoolConfig(fairness=FairnessAgentConfig(aging_s=300.0, hold_winning_bid=True)),
]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seed", [5, 13])
def test_carried_facts_decide_what_a_cold_cycle_decides(seed: int, config: PoolConfig) -> None:
    snapshot: Snapshot = make_snapshot(
        ClusterSpec(nodes=120, gpus_per_node=8, running=900, pending=700, seed=seed)
    )
    rng = random.Random(seed)
    cycle_module.forget_carried_facts()
    decisions = run_cycle(snapshot, config)
    for serial in range(5):
        snapshot = evolve(snapshot, decisions, interval_s=5.0, churn=0.01, rng=rng, serial=serial)
        if serial == 2:
            # A replaced workload (same UID, new object) is derived again, not taken from
            # the carried facts.
            workloads = dict(snapshot.workloads)
            for uid, workload in list(workloads.items())[::7]:
                if workload.allocation is None:
                    workloads[uid] = replace(workload, bid_per_gpu_hour=3.5, submitted_at=0.0)
            snapshot = replace(snapshot, workloads=workloads)
        if serial == 3:
            # Running workloads replaced (a checkpoint, an earlier start): their guarantee
            # order and victim order are derived again, not carried.
            workloads = dict(snapshot.workloads)
            for uid, workload in list(workloads.items())[::5]:
                allocation = workload.allocation
                if allocation is not None and workload.preempted_at is None:
                    workloads[uid] = replace(
                        workload,
                        last_checkpoint_at=snapshot.now - 1.0,
                        allocation=replace(allocation, started_at=allocation.started_at - 900.0),
                    )
            snapshot = replace(snapshot, workloads=workloads)
        decisions = run_cycle(snapshot, config)  # with the previous cycles' facts
        warm = every_decision(decisions)
        assert warm == every_decision(_from_scratch(snapshot, config))
        # And the warm cycle again, now after a cold one: the facts are carried per config.
        assert every_decision(run_cycle(snapshot, config)) == warm


def _bits(value: float) -> str:
    return value.hex() if isinstance(value, float) else repr(value)


def test_pending_bid_from_constants_is_bit_identical_to_effective() -> None:
    rng = random.Random(1)
    configs = [
        PoolConfig(),
        PoolConfig(fairness=FairnessAgentConfig(aging_s=900.0, aging_requeued_only=False)),
        PoolConfig(fairness=FairnessAgentConfig(prior_duration_s=0.0, max_bid_per_gpu_hour=3.0)),
        PoolConfig(credit_horizon_s=0.0),
    ]
    tenants = [
        Tenant(name=TenantName("t"), credit_balance=balance, credits_per_hour=income)
        for balance, income in [(0.0, 0.0), (50.0, 2.0), (-5.0, 1.0), (math.inf, math.inf)]
    ]
    for _ in range(3000):
        config = rng.choice(configs)
        now = rng.uniform(0, 1e6)
        workload = Workload(
            uid=WorkloadUid("w"),
            name="w",
            tenant=TenantName("t"),
            replicas=rng.randint(1, 4),
            gpus_per_replica=rng.randint(1, 8),
            submitted_at=rng.uniform(0, now * 1.1),
            attained_service_s=rng.choice([0.0, rng.uniform(0, 1e5)]),
            expected_duration_s=rng.choice([None, 0.0, rng.uniform(1, 1e5)]),
            bid_per_gpu_hour=rng.choice([None, None, -1.0, 0.0, rng.uniform(0, 20)]),
            preemptions=rng.choice([0, 2]),
            queued_at=rng.choice([None, rng.uniform(0, now * 1.1)]),
        )
        tenant = rng.choice(tenants)
        gpus = rng.choice([0.0, float(workload.requested_gpus)])
        bidder = Bidder(now, config, rng.choice([None, {TenantName("t"): 1.5}]))
        if rng.random() < 0.1:
            bidder.veterans = frozenset({workload.uid})
        expected = bidder.effective(workload, tenant, gpus)
        got = bidder.pending_bid(
            workload.uid,
            workload.submitted_at,
            bidder.pending_constants(workload),
            bidder.budget(tenant),
            bidder.gpu_hours(gpus),
            tenant=workload.tenant,
        )
        assert _bits(got) == _bits(expected)


def test_carried_facts_count_only_for_the_same_owner_and_workload() -> None:
    memo: CarriedFacts[tuple[object, int]] = CarriedFacts()
    owner, other = PoolConfig(), PoolConfig()
    known = memo.previous(owner)
    assert known == {}
    memo.keep(owner, known)
    known["a"] = ("workload", 1)
    assert memo.previous(owner) == {"a": ("workload", 1)}
    assert memo.previous(other) == {}
    memo.clear()
    assert memo.previous(owner) == {}


def test_occupy_places_marks_what_occupy_healthy_marks() -> None:
    snapshot: Snapshot = make_snapshot(
        ClusterSpec(nodes=40, gpus_per_node=8, running=300, pending=10, seed=3)
    )
    config = PoolConfig()
    running = [w for w in snapshot.workloads.values() if w.allocation is not None]
    cold = ClusterState(snapshot.nodes, config.health)
    places: dict[WorkloadUid, tuple[tuple[int, int], ...]] = {}
    for workload in running:
        assert cold.occupy_healthy(workload)
        places[workload.uid] = tuple((ns.idx, slot) for ns, slot in cold.held[workload.uid])
    cold.finish_build()
    warm = ClusterState(snapshot.nodes, config.health)
    assert warm.layouts is cold.layouts  # the same nodes: the same layout list
    for workload in running:
        warm.occupy_places(workload, places[workload.uid], workload.gpu_share is None)
    warm.finish_build()
    for a, b in zip(cold.nodes, warm.nodes, strict=True):
        assert (a.status, a.holders, a.share_used, a.mem_left, a.free, a.rel) == (
            b.status,
            b.holders,
            b.share_used,
            b.mem_left,
            b.free,
            b.rel,
        )
    assert {uid: [(ns.idx, s) for ns, s in slots] for uid, slots in cold.held.items()} == {
        uid: [(ns.idx, s) for ns, s in slots] for uid, slots in warm.held.items()
    }
    assert (cold.free_total, cold.rel_total) == (warm.free_total, warm.rel_total)
    assert [(ns.idx, s) for ns, s in cold.shared] == [(ns.idx, s) for ns, s in warm.shared]
