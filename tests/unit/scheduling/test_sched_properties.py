"""Property-based tests: one per property listed in SCHEDULING.md."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from math import inf

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_builders import fast_pending_bid, node

from gpupool.scheduling import (
    Allocation,
    Decisions,
    GpuShare,
    NodeName,
    PoolConfig,
    PreemptionCause,
    ReplicaPlacement,
    Snapshot,
    Tenant,
    TenantName,
    Tier,
    WaitCode,
    Workload,
    WorkloadKind,
    WorkloadUid,
    run_cycle,
)
from gpupool.scheduling.auction import Bidder, effective_bid, raw_bid, weight_factors
from gpupool.scheduling.credits import settle, spend_credits
from gpupool.scheduling.guarantees import guarantee_entry, split_running

CONFIG = PoolConfig()
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def workload_specs(
    draw: st.DrawFn, *, uid: str, gpus_per_node: int, tenants: list[str]
) -> Workload:
    kind = draw(st.sampled_from([WorkloadKind.TRAINING, WorkloadKind.INFERENCE]))
    share = None
    per_replica = draw(st.integers(1, gpus_per_node))
    if kind is WorkloadKind.INFERENCE and draw(st.booleans()):
        share = GpuShare(
            fraction=draw(st.sampled_from([0.25, 0.5])),
            memory_mib=draw(st.sampled_from([10_000, 30_000, 60_000])),
        )
        per_replica = 0
    replicas = draw(st.integers(1, 3))
    elastic = draw(st.booleans()) and replicas > 1
    return Workload(
        uid=WorkloadUid(uid),
        name=uid,
        tenant=TenantName(draw(st.sampled_from(tenants))),
        kind=kind,
        tier=draw(st.sampled_from(list(Tier))),
        replicas=replicas,
        min_replicas=draw(st.integers(1, replicas)) if elastic else None,
        gpus_per_replica=per_replica,
        gpu_share=share,
        bid_per_gpu_hour=draw(st.one_of(st.none(), st.floats(0.01, 10.0))),
        submitted_at=draw(st.floats(0.0, 900.0)),
        attained_service_s=draw(st.sampled_from([0.0, 100.0, 5000.0])),
    )


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    """A small pool whose running work was itself placed by run_cycle, plus new arrivals."""
    gpus = draw(st.sampled_from([2, 4, 8]))
    domains = draw(st.sampled_from([1, 2])) if gpus >= 4 else 1
    count = draw(st.integers(1, 4))
    nodes = tuple(
        node(
            f"n{i}",
            gpus,
            domains=domains,
            unhealthy=draw(st.sets(st.integers(0, gpus - 1), max_size=1)),
        )
        for i in range(count)
    )
    names = [f"t{i}" for i in range(draw(st.integers(1, 3)))]
    tenants = {
        TenantName(name): Tenant(
            name=TenantName(name),
            guaranteed_gpus=draw(st.integers(0, gpus * count // 2)),
            max_gpus=draw(st.one_of(st.none(), st.integers(gpus, gpus * count))),
            credits_per_hour=draw(st.sampled_from([0.0, 10.0])),
            credits_max=1000.0,
            credit_balance=draw(st.sampled_from([0.0, 5.0, 1000.0])),
            weight=draw(st.sampled_from([1.0, 1.0, 3.0])),
        )
        for name in names
    }
    first = [
        draw(workload_specs(uid=f"a{i}", gpus_per_node=gpus, tenants=names))
        for i in range(draw(st.integers(0, 8)))
    ]
    start = 1000.0
    placed = run_cycle(
        Snapshot(now=start, nodes=nodes, tenants=tenants, workloads={w.uid: w for w in first}),
        CONFIG,
    )
    workloads: dict[WorkloadUid, Workload] = {}
    for candidate in first:
        placement = placed.bindings.get(candidate.uid)
        workloads[candidate.uid] = (
            candidate
            if placement is None
            else replace(
                candidate,
                replicas=candidate.replicas if candidate.min_replicas else len(placement),
                allocation=Allocation(replicas=placement, started_at=start),
            )
        )
    for i in range(draw(st.integers(0, 6))):
        late = draw(workload_specs(uid=f"b{i}", gpus_per_node=gpus, tenants=names))
        workloads[late.uid] = late
    now = start + draw(st.sampled_from([10.0, 400.0, 5000.0]))
    return Snapshot(now=now, nodes=nodes, tenants=tenants, workloads=workloads)


def holders(snapshot: Snapshot, decisions: Decisions) -> dict[tuple[str, int], list[Workload]]:
    """Who holds each GPU once the decisions are carried out (before any release)."""
    held: dict[tuple[str, int], list[Workload]] = defaultdict(list)
    for workload in snapshot.workloads.values():
        allocation = workload.allocation
        placement = allocation.replicas if allocation is not None else None
        if placement is None:
            placement = decisions.bindings.get(workload.uid)
        for replica in placement or ():
            for index in replica.gpu_indices:
                held[(replica.node, index)].append(workload)
    return held


# -- never more GPUs allocated than healthy capacity, per GPU and per node -----------------


@PROPERTY
@given(snapshots())
def test_never_more_gpus_allocated_than_healthy_capacity(snapshot: Snapshot) -> None:
    decisions = run_cycle(snapshot, CONFIG)
    gpus = {(n.name, g.index): g for n in snapshot.nodes for g in n.gpus}
    bound = {
        (replica.node, index)
        for placement in decisions.bindings.values()
        for replica in placement
        for index in replica.gpu_indices
    }
    for key in bound:
        assert gpus[key].healthy, f"bound onto unhealthy GPU {key}"
    for key, users in holders(snapshot, decisions).items():
        whole = [w for w in users if w.gpu_share is None]
        shares = [w for w in users if w.gpu_share is not None]
        if key in bound:
            assert len(whole) <= 1, f"GPU {key} given to {[w.uid for w in whole]}"
            assert not (whole and shares), f"GPU {key} both whole and shared"
            fraction = sum(w.gpu_share.fraction for w in shares if w.gpu_share)
            memory = sum(w.gpu_share.memory_mib for w in shares if w.gpu_share)
            assert fraction <= 1.0 + 1e-9
            assert memory <= gpus[key].memory_total_mib
    per_node: dict[str, set[int]] = defaultdict(set)
    for node_name, index in bound:
        per_node[node_name].add(index)
    for current in snapshot.nodes:
        healthy = sum(1 for g in current.gpus if g.healthy)
        assert len(per_node[current.name]) <= healthy


# -- gangs are all-or-nothing; an elastic job never runs below minReplicas -----------------


@PROPERTY
@given(snapshots())
def test_gangs_are_all_or_nothing_and_elastic_jobs_respect_their_minimum(
    snapshot: Snapshot,
) -> None:
    decisions = run_cycle(snapshot, CONFIG)
    nodes = {n.name: n for n in snapshot.nodes}
    for uid, placement in decisions.bindings.items():
        workload = snapshot.workloads[uid]
        if workload.min_replicas is None:
            assert len(placement) == workload.replicas
        else:
            assert workload.min_replicas <= len(placement) <= workload.replicas
        for replica in placement:
            indices = replica.gpu_indices
            expected = 1 if workload.gpu_share is not None else workload.gpus_per_replica
            assert len(indices) == len(set(indices)) == expected
            domain_of = {g.index: g.nvlink_domain for g in nodes[replica.node].gpus}
            sizes: dict[int, int] = defaultdict(int)
            for domain in domain_of.values():
                sizes[domain] += 1
            if expected <= max(sizes.values()):
                assert len({domain_of[i] for i in indices}) == 1, "replica spans NVLink domains"


# -- a higher tier is never blocked by a lower tier that could be preempted ----------------


@PROPERTY
@given(snapshots(), st.integers(0, 5), st.sampled_from([Tier.NORMAL, Tier.HIGH]))
def test_higher_tier_is_never_blocked_by_a_preemptible_lower_tier(
    snapshot: Snapshot, pick: int, tier: Tier
) -> None:
    running = [w for w in snapshot.workloads.values() if w.allocation is not None]
    if not running:
        return
    # One pending borrower of a tier above some running work; nothing else pending.
    # Fractional newcomers are left out: the victim search frees whole GPUs only, so a
    # share may wait where preempting other shares would have made room (documented).
    whole = [w for w in running if w.gpu_share is None]
    if not whole:
        return
    template = whole[pick % len(whole)]
    newcomer = replace(
        template,
        uid=WorkloadUid("newcomer"),
        name="newcomer",
        tenant=TenantName("outsider"),
        tier=tier,
        allocation=None,
        min_replicas=None,
        bid_per_gpu_hour=1.0,
    )
    tenants = dict(snapshot.tenants)
    tenants[TenantName("outsider")] = Tenant(name=TenantName("outsider"), credit_balance=1e6)
    workloads = {w.uid: w for w in running}
    workloads[newcomer.uid] = newcomer
    trial = replace(snapshot, tenants=tenants, workloads=workloads)
    decisions = run_cycle(trial, CONFIG)
    if newcomer.uid in decisions.bindings or decisions.preemptions:
        return
    reason = decisions.waiting[newcomer.uid]
    if reason.code is WaitCode.AWAITING_RELEASE:
        return
    # It waits without preempting: then even with every lower-tier borrower gone
    # (all it may preempt) it must not fit.
    inside, _, _ = split_running(
        [guarantee_entry(w, w.allocated_gpus()) for w in running], snapshot.tenants
    )
    kept = {
        uid: w
        for uid, w in workloads.items()
        if not (w.allocation is not None and w.tier < tier and uid not in inside)
    }
    without = run_cycle(replace(trial, workloads=kept), CONFIG)
    assert newcomer.uid not in without.bindings, reason.message


# -- a tenant inside its guarantee is never preempted by borrowers -------------------------


@PROPERTY
@given(snapshots())
def test_tenant_inside_its_guarantee_is_never_preempted_by_borrowers(
    snapshot: Snapshot,
) -> None:
    decisions = run_cycle(snapshot, CONFIG)
    running = [
        guarantee_entry(w, w.allocated_gpus())
        for w in snapshot.workloads.values()
        if w.allocation is not None and w.preempted_at is None
    ]
    inside, _, _ = split_running(running, snapshot.tenants)
    for uid, preemption in decisions.preemptions.items():
        if uid not in inside or preemption.cause is PreemptionCause.UNHEALTHY_GPU:
            continue
        assert preemption.cause is PreemptionCause.HIGHER_TIER
        assert preemption.preemptor_guaranteed
        assert preemption.preemptor is not None
        assert snapshot.workloads[preemption.preemptor].tier > snapshot.workloads[uid].tier


# -- a winner never pays more than its bid; raising a bid never turns a win into a loss ----


@PROPERTY
@given(snapshots())
def test_a_winner_never_pays_more_than_its_bid(snapshot: Snapshot) -> None:
    decisions = run_cycle(snapshot, CONFIG)
    assert decisions.clearing_price_per_gpu_hour >= CONFIG.reserve_price_per_gpu_hour
    for uid, price in decisions.prices.items():
        assert price >= 0.0
        if uid in decisions.bids:
            assert price <= decisions.bids[uid] + 1e-9


@PROPERTY
@given(snapshots(), st.integers(0, 10), st.floats(1.1, 50.0))
def test_raising_a_bid_never_turns_a_win_into_a_loss(
    snapshot: Snapshot, pick: int, factor: float
) -> None:
    decisions = run_cycle(snapshot, CONFIG)
    winners = sorted(decisions.bindings)
    if not winners:
        return
    uid = winners[pick % len(winners)]
    workload = snapshot.workloads[uid]
    current = (
        workload.bid_per_gpu_hour
        or decisions.bids.get(uid)
        or raw_bid(workload, snapshot.now, CONFIG)
    )
    raised = replace(workload, bid_per_gpu_hour=current * factor + 0.01)
    again = run_cycle(replace(snapshot, workloads={**snapshot.workloads, uid: raised}), CONFIG)
    assert uid in again.bindings


# -- credits never go negative; spend equals price x GPUs x time ---------------------------


@settings(max_examples=200, deadline=None)
@given(
    balance=st.floats(0.0, 1000.0),
    per_hour=st.floats(0.0, 100.0),
    cap=st.floats(0.0, 2000.0),
    price=st.floats(0.0, 20.0),
    gpus=st.floats(0.0, 64.0),
    elapsed=st.floats(0.0, 7200.0),
)
def test_credits_never_go_negative_and_spend_is_price_times_gpus_times_time(  # noqa: PLR0917
    balance: float, per_hour: float, cap: float, price: float, gpus: float, elapsed: float
) -> None:
    tenant = Tenant(
        name=TenantName("t"),
        credits_per_hour=per_hour,
        credits_max=cap,
        credit_balance=min(balance, cap),
    )
    spend = spend_credits(price_per_gpu_hour=price, gpus=gpus, elapsed_s=elapsed)
    assert abs(spend - price * gpus * elapsed / 3600.0) <= 1e-9 * max(1.0, spend)
    statement = settle(tenant, spend=spend, elapsed_s=elapsed)
    assert 0.0 <= statement.tenant.credit_balance <= max(cap, 0.0) + 1e-9
    assert abs(statement.spent + statement.unpaid - spend) <= 1e-6 * max(1.0, spend)
    if spend <= tenant.credit_balance:
        assert statement.unpaid == 0.0
        assert statement.spent == spend


# -- deterministic: same snapshot, same decisions (ties broken by UID) ---------------------


def comparable(decisions: Decisions) -> tuple[object, ...]:
    return (
        dict(decisions.bindings),
        dict(decisions.preemptions),
        decisions.clearing_price_per_gpu_hour,
        dict(decisions.prices),
        dict(decisions.bids),
        dict(decisions.waiting),
        dict(decisions.queue_positions),
    )


@PROPERTY
@given(snapshots())
def test_same_snapshot_same_decisions_whatever_the_input_order(snapshot: Snapshot) -> None:
    first = comparable(run_cycle(snapshot, CONFIG))
    assert comparable(run_cycle(snapshot, CONFIG)) == first
    shuffled = replace(
        snapshot,
        workloads=dict(reversed(list(snapshot.workloads.items()))),
        nodes=tuple(reversed(snapshot.nodes)),
    )
    assert comparable(run_cycle(shuffled, CONFIG)) == first


# -- the fast bidder computes exactly the documented bid -----------------------------------


AGED_HOLDING = replace(
    CONFIG,
    fairness=replace(CONFIG.fairness, aging_s=3600.0, hold_winning_bid=True),
)


@PROPERTY
@given(snapshots(), st.sampled_from([CONFIG, AGED_HOLDING]))
def test_fast_bidder_matches_the_reference_functions(
    snapshot: Snapshot, config: PoolConfig
) -> None:
    factors = weight_factors(snapshot.tenants.values())
    bidder = Bidder(snapshot.now, config, factors)
    for workload in snapshot.workloads.values():
        tenant = snapshot.tenants[workload.tenant]
        gpus = workload.requested_gpus
        weight = factors.get(workload.tenant, 1.0)
        assert bidder.raw(workload) == raw_bid(workload, snapshot.now, config, weight=weight)
        assert bidder.effective(workload, tenant, gpus) == effective_bid(
            workload, tenant, gpus, snapshot.now, config, weight=weight
        )


@PROPERTY
@given(snapshots(), st.sampled_from([CONFIG, AGED_HOLDING]))
def test_inlined_bids_of_pending_and_running_workloads_match_effective(
    snapshot: Snapshot, config: PoolConfig
) -> None:
    bidder = Bidder(snapshot.now, config, weight_factors(snapshot.tenants.values()))
    for workload in snapshot.workloads.values():
        tenant = snapshot.tenants[workload.tenant]
        for gpus in (workload.requested_gpus, 0.0):
            expected = bidder.effective(workload, tenant, gpus)
            allocation = workload.allocation
            if allocation is None:
                got = fast_pending_bid(bidder, workload, tenant, gpus, now=snapshot.now)
                assert got == expected
            else:
                assert bidder.effective_running(workload, allocation, tenant, gpus) == expected


@PROPERTY
@given(snapshots())
def test_a_running_workload_holding_its_winning_bid_never_bids_below_it(
    snapshot: Snapshot,
) -> None:
    for workload in snapshot.workloads.values():
        allocation = workload.allocation
        if allocation is None or workload.bid_per_gpu_hour is not None:
            continue
        as_pending = replace(workload, allocation=None, preempted_at=None)
        won = raw_bid(as_pending, allocation.started_at, AGED_HOLDING)
        now = max(snapshot.now, allocation.started_at)
        assert raw_bid(workload, now, AGED_HOLDING) >= won
        assert raw_bid(workload, now, CONFIG) <= raw_bid(workload, now, AGED_HOLDING)


def test_fast_bidder_adds_the_current_run_exactly_like_the_reference() -> None:
    # (1343.6 + 16112.0) - 8474.3 != 1343.6 + (16112.0 - 8474.3) in floating point: the
    # fast paths must associate like the reference, or bids (and sort orders) drift.
    workload = Workload(
        uid=WorkloadUid("w"),
        name="w",
        tenant=TenantName("t"),
        attained_service_s=1343.6,
        allocation=Allocation(
            replicas=(ReplicaPlacement(node=NodeName("n"), gpu_indices=(0,)),), started_at=8474.3
        ),
    )
    tenant = Tenant(name=TenantName("t"), credits_per_hour=1.0, credit_balance=1.0)
    for config in (CONFIG, AGED_HOLDING):
        bidder = Bidder(16112.0, config)
        reference = raw_bid(workload, 16112.0, config)
        assert bidder.raw(workload) == reference
        assert workload.allocation is not None
        assert bidder.effective_running(workload, workload.allocation, tenant, 1.0) == (
            effective_bid(workload, tenant, 1.0, 16112.0, config)
        )


# -- the veterans' lane: bounded, and its members are never outbid --------------------------

LANE = replace(CONFIG, veteran_share=0.5, veteran_min_attained_s=0.0)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots())
def test_veterans_are_never_outbid_and_the_lane_is_bounded(snapshot: Snapshot) -> None:
    # Unmetered credits, so that a veteran's bid is the ceiling (credits would cap it).
    unmetered = {
        name: replace(t, credits_per_hour=inf, credits_max=inf, credit_balance=inf)
        for name, t in snapshot.tenants.items()
    }
    snapshot = replace(snapshot, tenants=unmetered)
    decisions = run_cycle(snapshot, LANE)
    ceiling = LANE.fairness.max_bid_per_gpu_hour
    usable = sum(1 for n in snapshot.nodes for gpu in n.gpus if gpu.healthy)
    veterans = [
        w
        for w in snapshot.workloads.values()
        if w.allocation is not None
        and w.preempted_at is None
        and w.bid_per_gpu_hour is None
        and decisions.bids.get(w.uid) == ceiling
    ]
    assert sum(w.allocated_gpus() for w in veterans) <= LANE.veteran_share * usable
    for w in veterans:
        preemption = decisions.preemptions.get(w.uid)
        assert preemption is None or preemption.cause is not PreemptionCause.OUTBID
