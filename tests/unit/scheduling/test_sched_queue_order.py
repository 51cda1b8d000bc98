"""The pending queue's column path (:mod:`gpupool.scheduling.queue_order`) against the
per-workload reference: the same bids to the bit, the same total order, the same rejects."""

from __future__ import annotations

import random
from dataclasses import replace
from types import SimpleNamespace

import pytest
from sched_builders import every_decision

from gpupool.scheduling import (
    PoolConfig,
    Tenant,
    TenantName,
    Tier,
    Workload,
    WorkloadUid,
    run_cycle,
)
from gpupool.scheduling import cycle as cycle_module
from gpupool.scheduling.auction import Bidder
from gpupool.scheduling.config import FairnessAgentConfig, GuaranteeOrder
from gpupool.scheduling.queue_order import PendingTable, order_queue, pending_facts
from gpupool.scheduling.workload_index import workload_index
from gpupool.sim.synthetic import ClusterSpec, make_snapshot

TENANTS = {
    TenantName("rich"): Tenant(name=TenantName("rich"), credit_balance=1e9),
    TenantName("poor"): Tenant(name=TenantName("poor"), credit_balance=3.0, credits_per_hour=1.0),
    TenantName("heavy"): Tenant(name=TenantName("heavy"), weight=3, credit_balance=500.0),
}

NAMES = list(TENANTS)

CONFIGS = [
    PoolConfig(),
    PoolConfig(fairness=FairnessAgentConfig(aging_s=600.0, aging_requeued_only=False)),
    PoolConfig(credit_horizon_s=0.0),
]


def _random_queue(rng: random.Random, count: int, now: float) -> list[Workload]:
    workloads = []
    for index in range(count):
        replicas = rng.choice([1, 1, 2, 4])
        workloads.append(
            Workload(
                uid=WorkloadUid(f"w{rng.randrange(10**6):06d}-{index}"),
                name=f"w{index}",
                tenant=rng.choice([*NAMES, TenantName("stranger")] if index % 17 == 3 else NAMES),
                tier=rng.choice(list(Tier)),
                replicas=replicas if index % 23 != 5 else 0,
                gpus_per_replica=rng.choice([1, 2, 8]),
                min_replicas=rng.choice([None, 1]) if replicas > 1 else None,
                # Few distinct submission times and attained services: many full ties.
                submitted_at=rng.choice([0.0, 100.0, now - 5000.0, now]),
                attained_service_s=rng.choice([0.0, 0.0, 900.0, 90_000.0]),
                bid_per_gpu_hour=rng.choice([None, None, None, 0.5, 7.0]),
                preemptions=rng.choice([0, 1]),
                queued_at=rng.choice([None, now - 50.0]),
            )
        )
    return workloads


@pytest.mark.parametrize("seed", range(12))
def test_the_column_path_bids_and_orders_like_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    now = 40_000.0
    config = CONFIGS[seed % len(CONFIGS)]
    weights = {TenantName("rich"): 0.8, TenantName("poor"): 0.8, TenantName("heavy"): 1.4}
    bidder = Bidder(now, config, weights if seed % 2 else None)
    queue_workloads = _random_queue(rng, rng.choice([1, 2, 40, 300]), now)
    bidder.veterans = frozenset(w.uid for w in queue_workloads if rng.random() < 0.1)
    table = PendingTable()
    # Rows out of submission order, and stale rows (a replaced object) the queue skips.
    for workload in queue_workloads:
        table.add(pending_facts(workload, bidder, 0.0))
    rows = [table.add(pending_facts(w, bidder, 0.0))[15] for w in queue_workloads]
    budgets = {name: bidder.budget(tenant) for name, tenant in TENANTS.items()}

    queue = order_queue(table, rows, now=now, bidder=bidder, budgets=budgets)

    biddable = [w for w in queue_workloads if w.tenant in TENANTS and w.replicas >= 1]
    expected = {
        w.uid: bidder.effective(w, TENANTS[w.tenant], float(w.requested_gpus)) for w in biddable
    }
    reference = sorted(biddable, key=lambda w: (-w.tier, -expected[w.uid], w.submitted_at, w.uid))
    assert [w.uid for w in queue.workloads] == [w.uid for w in reference]
    assert [bid.hex() for bid in queue.bids] == [expected[w.uid].hex() for w in reference]
    assert queue.minimums == [
        float(w.smallest_replica_count * w.gpus_per_replica) for w in reference
    ]
    rejected = [i for i, w in enumerate(queue_workloads) if w not in biddable]
    assert queue.rejected == rejected


def test_full_ties_go_by_uid_whatever_the_rows() -> None:
    bidder = Bidder(1000.0, PoolConfig())
    table = PendingTable()
    same = {"tenant": TenantName("rich"), "gpus_per_replica": 1, "submitted_at": 10.0}
    rows = [
        table.add(pending_facts(Workload(uid=WorkloadUid(uid), name=uid, **same), bidder, 0.0))[15]
        for uid in ("c", "a", "d", "b")
    ]
    queue = order_queue(table, rows, now=1000.0, bidder=bidder, budgets={TenantName("rich"): 1e9})
    assert [w.uid for w in queue.workloads] == ["a", "b", "c", "d"]
    assert len(set(queue.bids)) == 1
    # Rows added after a ranking are ranked among the others (one by one, or by a sort
    # of every row when many arrive at once).
    for added in (["e", "aa"], [f"b{i:02d}" for i in range(40)]):
        rows += [
            table.add(pending_facts(Workload(uid=WorkloadUid(u), name=u, **same), bidder, 0.0))[15]
            for u in added
        ]
        queue = order_queue(
            table, rows, now=1000.0, bidder=bidder, budgets={TenantName("rich"): 1e9}
        )
        assert [w.uid for w in queue.workloads] == sorted(table.uids[row] for row in rows)


def test_the_table_grows_and_keeps_every_row() -> None:
    bidder = Bidder(0.0, PoolConfig())
    table = PendingTable()
    workloads = [
        Workload(uid=WorkloadUid(f"w{i:04d}"), name="w", tenant=TenantName("rich"), submitted_at=-i)
        for i in range(700)
    ]
    rows = [table.add(pending_facts(w, bidder, 0.0))[15] for w in workloads]
    assert rows == list(range(700))
    queue = order_queue(table, rows, now=0.0, bidder=bidder, budgets={TenantName("rich"): 1e9})
    # Earlier submission waited longer: it bids more and goes first.
    assert [w.uid for w in queue.workloads] == [w.uid for w in reversed(workloads)]


def test_a_fresh_table_replaces_one_full_of_gone_rows_without_changing_decisions() -> None:
    # Every pending object replaced every cycle: 30 new rows per cycle, so the table
    # passes 2 x 30 + 1,024 rows and is swapped for a fresh one on the way.
    config = PoolConfig()
    first = make_snapshot(ClusterSpec(nodes=4, gpus_per_node=8, running=20, pending=30, seed=3))
    snapshots = []
    for step in range(45):
        workloads = {
            uid: replace(w) if w.allocation is None else w for uid, w in first.workloads.items()
        }
        snapshots.append(replace(first, now=first.now + 60.0 * step, workloads=workloads))
    cold = []
    for snapshot in snapshots:
        cycle_module.forget_carried_facts()
        cold.append(every_decision(run_cycle(snapshot, config)))
    cycle_module.forget_carried_facts()
    sizes = []
    for snapshot, expected in zip(snapshots, cold, strict=True):
        assert every_decision(run_cycle(snapshot, config)) == expected
        sizes.append(workload_index(config).table.rows)
    # It grew to the bound, then a fresh table with only the queue's 30 rows took over.
    assert max(sizes) > 1024
    assert 30 in sizes[sizes.index(max(sizes)) :]


@pytest.mark.parametrize("seed", range(8))
def test_inside_guarantee_is_first_fit_per_tenant_in_queue_order(seed: int) -> None:
    rng = random.Random(seed)
    now = 40_000.0
    bidder = Bidder(now, PoolConfig())
    queue_workloads = _random_queue(rng, rng.choice([1, 40, 300]), now)
    table = PendingTable()
    rows = [table.add(pending_facts(w, bidder, 0.0))[15] for w in queue_workloads]
    budgets = {name: bidder.budget(tenant) for name, tenant in TENANTS.items()}
    queue = order_queue(table, rows, now=now, bidder=bidder, budgets=budgets)
    headroom = {name: rng.choice([-2.0, 0.0, 3.0, 8.5, 40.0]) for name in TENANTS}
    for order in GuaranteeOrder:
        # The method reads only the config of its cycle.
        cycle = SimpleNamespace(
            config=replace(PoolConfig(), guarantee_order=order),
            _inside_by_arrival=cycle_module._Cycle._inside_by_arrival,
        )
        inside = cycle_module._Cycle._inside_guarantee(cycle, queue, dict(headroom))  # type: ignore[arg-type]
        reference: list[int] = []
        for name, unused in headroom.items():
            room = unused
            positions = [i for i, w in enumerate(queue.workloads) if w.tenant == name]
            if order is GuaranteeOrder.ARRIVAL:
                positions.sort(
                    key=lambda i: (
                        -queue.workloads[i].tier,
                        queue.workloads[i].submitted_at,
                        queue.workloads[i].uid,
                    )
                )
            for i in positions:
                full = float(queue.workloads[i].requested_gpus)
                if room > 0 and full <= room:
                    room -= full
                    reference.append(i)
        assert sorted(inside) == sorted(reference)
        assert len(inside) == len(set(inside))
    assert any(headroom.values())
