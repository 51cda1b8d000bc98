"""Facts carried from one cycle to the next change no decision: a cycle that finds them
decides exactly what a cycle that derives everything from scratch decides."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from sched_builders import every_decision, fast_pending_bid

from gpupool.scheduling import (
    Allocation,
    Decisions,
    FairnessAgentConfig,
    NodeName,
    PoolConfig,
    ReplicaPlacement,
    Snapshot,
    Tenant,
    TenantName,
    Workload,
    WorkloadUid,
    run_cycle,
)
from gpupool.scheduling import cycle as cycle_module
from gpupool.scheduling import guarantees as guarantees_module
from gpupool.scheduling.auction import Bidder
from gpupool.scheduling.guarantees import GuaranteeEntry, guarantee_entry, split_running
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
        got = fast_pending_bid(bidder, workload, tenant, gpus, now=now)
        assert _bits(got) == _bits(expected)


def _index(snapshot: Snapshot, config: PoolConfig) -> tuple[object, ...]:
    """Everything the capacity index of a cycle on ``snapshot`` starts from."""
    cycle = cycle_module._Cycle(snapshot, config)
    try:
        cycle.index_snapshot()
        state = cycle.state
        return (
            [
                (
                    ns.status,
                    ns.holders,
                    ns.share_used,
                    ns.mem_left,
                    ns.free_d,
                    ns.rel_d,
                    ns.free,
                    ns.rel,
                    ns.best_domain_free,
                )
                for ns in state.nodes
            ],
            [[ns.idx for ns in bucket] for bucket in state.free_buckets],
            [[ns.idx for ns in bucket] for bucket in state.domain_buckets],
            [ns.idx for ns in state.rel_nodes],
            [(ns.idx, slot) for ns, slot in state.shared],
            (state.free_total, state.rel_total, state.usable_total, state.max_usable_per_node),
            {
                w.uid: [(ns.idx, slot) for ns, slot in state.held_slots(w)]
                for w in snapshot.workloads.values()
                if w.allocation is not None
            },
            sorted(cycle.preemptions),
        )
    finally:
        cycle.kept.give_back(cycle.state)


@pytest.mark.parametrize("seed", [3, 8])
def test_kept_nodes_give_the_index_a_cold_build_gives(seed: int) -> None:
    """The node states kept between cycles (:mod:`gpupool.scheduling.kept_nodes`), after
    cycles that placed and preempted on them and with the running set changing, start the
    next cycle exactly where a build from nothing starts it."""
    config = PoolConfig()
    snapshot: Snapshot = make_snapshot(
        ClusterSpec(nodes=40, gpus_per_node=8, running=300, pending=200, seed=seed)
    )
    rng = random.Random(seed)
    cycle_module.forget_carried_facts()
    for serial in range(8):
        decisions = run_cycle(snapshot, config)
        snapshot = evolve(snapshot, decisions, interval_s=60.0, churn=0.05, rng=rng, serial=serial)
        if serial == 4:
            # The same workloads in another order: every node is marked again.
            items = list(snapshot.workloads.items())
            rng.shuffle(items)
            snapshot = replace(snapshot, workloads=dict(items))
        warm = _index(snapshot, config)
        cycle_module.forget_carried_facts()
        assert _index(snapshot, config) == warm
        run_cycle(snapshot, config)  # keep the cold cycle's nodes for the next round


def test_guarantee_fit_is_cached_only_for_the_same_members_and_guarantee() -> None:
    """The first-fit kept per tenant (``guarantees._first_fit``) is reused only for the very
    same member entries and guarantee: a changed guarantee or member set is fitted again."""
    guarantees_module.forget_fits()
    name = TenantName("t")
    entries = [
        guarantee_entry(
            Workload(
                uid=WorkloadUid(f"w{i}"),
                name=f"w{i}",
                tenant=name,
                replicas=1,
                gpus_per_replica=gpus,
                submitted_at=0.0,
                allocation=Allocation(
                    replicas=(ReplicaPlacement(node=NodeName("n"), gpu_indices=(0,)),),
                    started_at=float(i),
                ),
            ),
            float(gpus),
        )
        for i, gpus in enumerate([4, 2, 3, 1])
    ]

    def fit(guaranteed: int, members: list[GuaranteeEntry]) -> set[WorkloadUid]:
        tenants = {name: Tenant(name=name, guaranteed_gpus=guaranteed)}
        return split_running(list(members), tenants)[0]

    assert fit(6, entries) == {"w0", "w1"}
    assert fit(6, entries) == {"w0", "w1"}  # the cached fit
    assert fit(8, entries) == {"w0", "w1", "w3"}  # another guarantee: fitted again
    assert fit(5, entries[1:]) == {"w1", "w2"}  # other members: fitted again
    guarantees_module.forget_fits()
    assert fit(5, entries[1:]) == {"w1", "w2"}
