"""Table-driven tests of run_cycle, built from fixture builders."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sched_builders import JobBuilder, cluster, job, node, snapshot, tenant

from gpupool.scheduling import (
    PoolConfig,
    PreemptionCause,
    ReplicaPlacement,
    WaitCode,
    run_cycle,
)
from gpupool.scheduling.config import GuaranteeOrder
from gpupool.scheduling.model import (
    GPU,
    Allocation,
    GpuShare,
    Node,
    NodeName,
    Tenant,
    TenantName,
    Tier,
    Workload,
    WorkloadKind,
    WorkloadUid,
)
from gpupool.scheduling.snapshot import Snapshot

CONFIG = PoolConfig()


def nodes_of(placement: tuple[ReplicaPlacement, ...]) -> list[str]:
    return [replica.node for replica in placement]


def test_single_gpu_job_takes_the_fullest_node_so_whole_nodes_stay_free() -> None:
    snap = snapshot(
        job("busy").gpus(6).running_on(("n0", range(6))),
        job("a").gpus(1),
        nodes=cluster(2),
    )
    decisions = run_cycle(snap, CONFIG)
    assert nodes_of(decisions.bindings["a"]) == ["n0"]
    assert decisions.bindings["a"][0].gpu_indices == (6,)


def test_gang_packs_two_replicas_onto_whole_nodes() -> None:
    decisions = run_cycle(snapshot(job("g").gpus(8).replicas(2), nodes=cluster(3)), CONFIG)
    placement = decisions.bindings["g"]
    assert len(placement) == 2
    assert len(set(nodes_of(placement))) == 2
    assert all(len(replica.gpu_indices) == 8 for replica in placement)


def test_small_gang_fits_on_one_node() -> None:
    decisions = run_cycle(snapshot(job("g").gpus(2).replicas(3), nodes=cluster(2)), CONFIG)
    assert set(nodes_of(decisions.bindings["g"])) == {"n0"}


def test_gang_is_all_or_nothing() -> None:
    snap = snapshot(
        job("busy").gpus(8).running_on(("n0", range(8))).priority("high"),
        job("g").gpus(8).replicas(2),
        nodes=cluster(2),
    )
    decisions = run_cycle(snap, CONFIG)
    assert "g" not in decisions.bindings
    assert decisions.waiting["g"].code is WaitCode.NO_CAPACITY
    assert decisions.waiting["g"].needed_gpus == 16


def test_replica_stays_inside_one_nvlink_domain() -> None:
    # Domain 0 (GPUs 0-3) has 3 free, domain 1 (4-7) has 4 free: 4 GPUs must go to 4-7.
    snap = snapshot(
        job("busy").gpus(1).running_on(("n0", [0])),
        job("a").gpus(4),
        nodes=[node("n0", 8, domains=2)],
    )
    decisions = run_cycle(snap, CONFIG)
    assert decisions.bindings["a"][0].gpu_indices == (4, 5, 6, 7)


def test_replica_does_not_straddle_domains_even_when_enough_gpus_are_free() -> None:
    snap = snapshot(
        job("x").gpus(1).priority("high").running_on(("n0", [0])),
        job("y").gpus(1).priority("high").running_on(("n0", [4])),
        job("a").gpus(4),
        nodes=[node("n0", 8, domains=2)],
    )
    decisions = run_cycle(snap, CONFIG)
    assert "a" not in decisions.bindings
    assert decisions.waiting["a"].code is WaitCode.NO_PLACEMENT


def test_inference_replicas_spread_across_nodes() -> None:
    decisions = run_cycle(
        snapshot(job("svc").gpus(1).replicas(3).inference(), nodes=cluster(3)), CONFIG
    )
    assert sorted(nodes_of(decisions.bindings["svc"])) == ["n0", "n1", "n2"]


def test_fractional_replicas_share_a_gpu_when_memory_allows() -> None:
    decisions = run_cycle(
        snapshot(job("svc").share(0.5, 30_000).replicas(2), nodes=[node("n0", 1)]), CONFIG
    )
    placement = decisions.bindings["svc"]
    assert [replica.gpu_indices for replica in placement] == [(0,), (0,)]


def test_fractional_replicas_do_not_share_when_memory_is_short() -> None:
    decisions = run_cycle(
        snapshot(job("svc").share(0.5, 50_000).replicas(2), nodes=[node("n0", 1)]), CONFIG
    )
    assert "svc" not in decisions.bindings


def test_elastic_job_starts_with_what_fits_but_not_below_its_minimum() -> None:
    snap = snapshot(
        job("busy").gpus(8).running_on(("n0", range(8))).priority("high"),
        job("e").gpus(8).replicas(3).elastic(2),
        nodes=cluster(3),
    )
    assert len(run_cycle(snap, CONFIG).bindings["e"]) == 2
    tight = snapshot(
        job("busy").gpus(8).running_on(("n0", range(8))).priority("high"),
        job("busy2").gpus(8).running_on(("n1", range(8))).priority("high"),
        job("e").gpus(8).replicas(3).elastic(2),
        nodes=cluster(3),
    )
    assert "e" not in run_cycle(tight, CONFIG).bindings


def test_higher_tier_preempts_lower_tier_with_grace() -> None:
    snap = snapshot(
        job("low").gpus(8).priority("low").running_on(("n0", range(8)), since=0),
        job("hi").gpus(8).priority("high"),
        nodes=cluster(1),
        now=50.0,
    )
    decisions = run_cycle(snap, CONFIG)
    preemption = decisions.preemptions["low"]
    assert preemption.cause is PreemptionCause.HIGHER_TIER
    assert preemption.grace_deadline == 50.0 + CONFIG.grace_period_s
    assert preemption.preemptor == "hi"
    assert decisions.waiting["hi"].code is WaitCode.AWAITING_RELEASE


def test_releasing_gpus_are_claimed_by_the_waiting_preemptor_first() -> None:
    snap = snapshot(
        job("low").gpus(8).priority("low").running_on(("n0", range(8)), since=0).preempted(40),
        job("hi").gpus(8).priority("high"),
        job("small").gpus(1).priority("normal"),
        nodes=cluster(1),
    )
    decisions = run_cycle(snap, CONFIG)
    assert decisions.waiting["hi"].code is WaitCode.AWAITING_RELEASE
    assert "low" not in decisions.preemptions
    assert decisions.waiting["small"].code is WaitCode.NO_CAPACITY


def test_smallest_victim_set_prefers_one_big_victim_over_four_small_ones() -> None:
    small = [
        job(f"s{i}").gpus(1).priority("low").bid(1.0).running_on(("n0", [i]), since=900)
        for i in range(4)
    ]
    snap = snapshot(
        *small,
        job("big").gpus(4).priority("low").bid(1.0).running_on(("n1", range(4)), since=0),
        job("hi").gpus(4).priority("high"),
        nodes=[node("n0", 4), node("n1", 4)],
        now=1000.0,
    )
    decisions = run_cycle(snap, CONFIG)
    assert set(decisions.preemptions) == {"big"}


def test_victims_are_lowest_bid_first() -> None:
    snap = snapshot(
        job("rich").gpus(4).priority("low").bid(5.0).running_on(("n0", range(4)), since=0),
        job("poor").gpus(4).priority("low").bid(0.5).running_on(("n1", range(4)), since=0),
        job("hi").gpus(4).priority("high"),
        nodes=[node("n0", 4), node("n1", 4)],
    )
    assert set(run_cycle(snap, CONFIG).preemptions) == {"poor"}


def test_guarantee_reclaims_from_a_borrower_of_another_tenant() -> None:
    snap = snapshot(
        job("borrow").tenant("b").gpus(8).running_on(("n0", range(8)), since=990),
        job("mine").tenant("a").gpus(8),
        nodes=cluster(1),
        tenants=[tenant("a", guaranteed=8), tenant("b", guaranteed=0)],
    )
    decisions = run_cycle(snap, CONFIG)
    preemption = decisions.preemptions["borrow"]
    assert preemption.cause is PreemptionCause.GUARANTEE_RECLAIM
    assert preemption.preemptor_guaranteed


def test_a_borrower_never_preempts_a_workload_inside_its_guarantee() -> None:
    snap = snapshot(
        job("safe").tenant("a").gpus(8).bid(0.1).running_on(("n0", range(8)), since=0),
        job("rich").tenant("b").gpus(8).bid(100.0),
        nodes=cluster(1),
        tenants=[tenant("a", guaranteed=8), tenant("b")],
    )
    decisions = run_cycle(snap, CONFIG)
    assert not decisions.preemptions
    assert decisions.waiting["rich"].code is WaitCode.NO_CAPACITY


@pytest.mark.parametrize(
    ("victim_started", "preempted"),
    [(0.0, True), (900.0, False)],  # ran 1000 s vs 100 s with min runtime 300 s
)
def test_outbidding_respects_min_runtime(victim_started: float, preempted: bool) -> None:
    snap = snapshot(
        job("old").tenant("b").gpus(8).bid(0.2).running_on(("n0", range(8)), since=victim_started),
        job("new").tenant("c").gpus(8).bid(5.0),
        nodes=cluster(1),
        now=1000.0,
    )
    decisions = run_cycle(snap, CONFIG)
    assert ("old" in decisions.preemptions) is preempted
    if preempted:
        assert decisions.preemptions["old"].cause is PreemptionCause.OUTBID


def test_outbid_needs_the_margin() -> None:
    snap = snapshot(
        job("old").tenant("b").gpus(8).bid(1.0).running_on(("n0", range(8)), since=0),
        job("new").tenant("c").gpus(8).bid(1.5),
        nodes=cluster(1),
        now=1000.0,
    )
    assert not run_cycle(snap, PoolConfig(outbid_margin_ratio=1.0)).preemptions
    assert "old" in run_cycle(snap, PoolConfig(outbid_margin_ratio=0.2)).preemptions


def test_uniform_price_is_the_highest_losing_bid_and_winners_pay_at_most_their_bid() -> None:
    snap = snapshot(
        job("b3").gpus(1).bid(3.0),
        job("b2").gpus(1).bid(2.0),
        job("b1").gpus(1).bid(1.0),
        nodes=[node("n0", 2)],
    )
    decisions = run_cycle(snap, CONFIG)
    assert set(decisions.bindings) == {"b3", "b2"}
    assert decisions.clearing_price_per_gpu_hour == 1.0
    assert decisions.prices["b3"] == 1.0
    assert decisions.prices["b2"] == 1.0


def test_a_hole_filler_pays_its_bid_not_the_higher_clearing_price() -> None:
    snap = snapshot(
        job("busy").gpus(1).priority("high").running_on(("n1", [0])),
        job("big").gpus(1).replicas(2).bid(5.0),
        job("small").gpus(1).bid(0.5),
        nodes=[node("n0", 1), node("n1", 1)],
    )
    decisions = run_cycle(snap, CONFIG)
    assert set(decisions.bindings) == {"small"}
    assert decisions.clearing_price_per_gpu_hour == 5.0
    assert decisions.prices["small"] == 0.5


def test_without_contention_borrowers_pay_the_reserve_price() -> None:
    decisions = run_cycle(snapshot(job("a").gpus(1).bid(2.0), nodes=cluster(1)), CONFIG)
    assert decisions.clearing_price_per_gpu_hour == CONFIG.reserve_price_per_gpu_hour
    assert decisions.prices["a"] == CONFIG.reserve_price_per_gpu_hour


def test_workloads_inside_their_guarantee_pay_nothing() -> None:
    snap = snapshot(
        job("a").tenant("a").gpus(4).bid(2.0),
        nodes=cluster(1),
        tenants=[tenant("a", guaranteed=4)],
    )
    assert run_cycle(snap, CONFIG).prices["a"] == 0.0


def test_bid_below_reserve_waits_with_that_reason() -> None:
    decisions = run_cycle(snapshot(job("a").gpus(1).bid(0.01), nodes=cluster(1)), CONFIG)
    reason = decisions.waiting["a"]
    assert reason.code is WaitCode.BELOW_RESERVE
    assert "reserve price" in reason.message


@pytest.mark.parametrize(("weights", "winner"), [((1.0, 1.0), "early"), ((1.0, 3.0), "late")])
def test_tenant_weight_scales_the_agents_bids_for_contested_gpus(
    weights: tuple[float, float], winner: str
) -> None:
    # One free GPU, two equally sized jobs of two tenants; "early" waited longer.
    snap = snapshot(
        job("early").tenant("a").gpus(1).submitted(0.0),
        job("late").tenant("b").gpus(1).submitted(100.0),
        nodes=[node("n0", 1)],
        tenants=[tenant("a", weight=weights[0]), tenant("b", weight=weights[1])],
    )
    decisions = run_cycle(snap, CONFIG)
    assert set(decisions.bindings) == {winner}
    unweighted = run_cycle(
        snapshot(
            *(replace(w, tenant=TenantName("a")) for w in snap.workloads.values()),
            nodes=[node("n0", 1)],
            tenants=[tenant("a")],
        ),
        CONFIG,
    ).bids
    mean = sum(weights) / 2
    for uid, weight in (("early", weights[0]), ("late", weights[1])):
        assert decisions.bids[uid] == pytest.approx(unweighted[uid] * weight / mean)


def test_tenant_weight_leaves_explicit_bids_alone() -> None:
    snap = snapshot(
        job("a1").tenant("a").gpus(1).bid(2.0),
        job("b1").tenant("b").gpus(1).bid(2.0),
        nodes=[node("n0", 1)],
        tenants=[tenant("a", weight=1.0), tenant("b", weight=5.0)],
    )
    assert run_cycle(snap, CONFIG).bids == {"a1": 2.0, "b1": 2.0}


def test_empty_credits_cap_the_bid() -> None:
    snap = snapshot(
        job("a").tenant("broke").gpus(1).bid(2.0),
        nodes=cluster(1),
        tenants=[tenant("broke", balance=0.0, per_hour=0.0)],
    )
    reason = run_cycle(snap, CONFIG).waiting["a"]
    assert reason.code is WaitCode.NO_CREDITS


def test_waiting_message_names_gpus_free_capacity_bid_and_price() -> None:
    running = [
        job(f"r{i}").tenant("b").gpus(8).bid(0.9).running_on((f"n{i}", range(8)), since=0)
        for i in range(4)
    ]
    snap = snapshot(
        *running,
        job("w").tenant("c").gpus(8).replicas(4).bid(0.4),
        nodes=cluster(4),
        now=1000.0,
    )
    reason = run_cycle(snap, CONFIG).waiting["w"]
    assert reason.code is WaitCode.OUTBID
    assert reason.message == "needs 32 GPUs, 0 free at tier normal, bid 0.4 < price 0.9"


def test_unhealthy_gpu_evicts_its_workload_and_is_not_reused() -> None:
    snap = snapshot(
        job("hurt").gpus(2).running_on(("n0", [0, 1]), since=0),
        job("new").gpus(8),
        nodes=[node("n0", 8, unhealthy=[1])],
    )
    decisions = run_cycle(snap, CONFIG)
    assert decisions.preemptions["hurt"].cause is PreemptionCause.UNHEALTHY_GPU
    assert "new" not in decisions.bindings
    assert decisions.waiting["new"].code is WaitCode.TOO_LARGE


def test_cordoned_node_gets_no_new_work() -> None:
    snap = snapshot(job("a").gpus(1), nodes=[node("n0", 8, schedulable=False), node("n1", 8)])
    assert nodes_of(run_cycle(snap, CONFIG).bindings["a"]) == ["n1"]


def test_tenant_ceiling_keeps_a_job_waiting() -> None:
    snap = snapshot(
        job("a").tenant("t").gpus(4).running_on(("n0", range(4))),
        job("b").tenant("t").gpus(4),
        nodes=cluster(1),
        tenants=[tenant("t", max_gpus=6)],
    )
    assert run_cycle(snap, CONFIG).waiting["b"].code is WaitCode.OVER_TENANT_MAX


def test_unknown_tenant_waits_with_a_clear_reason() -> None:
    snap = snapshot(job("a").tenant("nobody").gpus(1), nodes=cluster(1))
    snap = type(snap)(now=snap.now, nodes=snap.nodes, tenants={}, workloads=snap.workloads)
    reason = run_cycle(snap, CONFIG).waiting["a"]
    assert reason.code is WaitCode.UNKNOWN_TENANT


def test_queue_positions_follow_the_order_considered() -> None:
    snap = snapshot(
        job("busy").gpus(8).priority("high").running_on(("n0", range(8))),
        job("late").gpus(1).bid(1.0).submitted(20),
        job("early").gpus(1).bid(1.0).submitted(10),
        job("rich").gpus(1).bid(9.0).submitted(30),
        nodes=cluster(1),
    )
    positions = run_cycle(snap, CONFIG).queue_positions
    assert [uid for uid, _ in sorted(positions.items(), key=lambda kv: kv[1])] == [
        "rich",
        "early",
        "late",
    ]


def test_a_higher_tier_gang_preempts_fractional_lower_tier_replicas_to_make_room() -> None:
    """Found by the tier property: the reach bound counted a shared GPU by its fraction
    (0.25), so a 2-GPU gang never searched victims that held a whole GPU between them."""

    def gpu(index: int) -> GPU:
        return GPU(index=index, memory_total_mib=80000, memory_free_mib=80000)

    n1 = NodeName("n1")
    shares = Workload(
        uid=WorkloadUid("shares"),
        name="shares",
        tenant=TenantName("t1"),
        kind=WorkloadKind.INFERENCE,
        tier=Tier.LOW,
        replicas=1,
        gpus_per_replica=0,
        gpu_share=GpuShare(fraction=0.25, memory_mib=10000),
        submitted_at=0.0,
        allocation=Allocation(
            replicas=(ReplicaPlacement(node=n1, gpu_indices=(0,)),), started_at=1000.0
        ),
    )
    gang = replace(
        shares,
        uid=WorkloadUid("gang"),
        name="gang",
        tenant=TenantName("t2"),
        kind=WorkloadKind.TRAINING,
        tier=Tier.NORMAL,
        replicas=2,
        gpus_per_replica=1,
        gpu_share=None,
        allocation=None,
        bid_per_gpu_hour=1.0,
    )
    trial = Snapshot(
        now=1010.0,
        nodes=(Node(name=n1, gpus=(gpu(0), gpu(1))),),
        tenants={
            TenantName("t1"): Tenant(name=TenantName("t1")),
            TenantName("t2"): Tenant(name=TenantName("t2"), credit_balance=1e6),
        },
        workloads={w.uid: w for w in (shares, gang)},
        pool="default",
    )
    decisions = run_cycle(trial, PoolConfig())
    assert set(decisions.preemptions) == {WorkloadUid("shares")}


# -- draining nodes for a starving gang (reserve_after_s) ----------------------------------

RESERVING = replace(CONFIG, reserve_after_s=3600.0)


def _fragmented() -> Snapshot:
    """Three 4-GPU nodes partly busy with well-paid work (2, 2 and 1 GPUs free); a 2x4
    gang and a 1-GPU job wait. The small job best-fits into a node with 2 free GPUs."""
    return snapshot(
        job("r0").gpus(2).bid(50.0).running_on(("n0", [0, 1]), since=0),
        job("r1").gpus(2).bid(50.0).running_on(("n1", [0, 1]), since=0),
        job("r2").gpus(1).bid(50.0).running_on(("n2", [0]), since=0),
        job("gang").gpus(4).replicas(2).bid(2.0).submitted(0),
        job("small").gpus(1).bid(1.0).submitted(5000),
        nodes=[node(f"n{i}", 4) for i in range(3)],
        now=6000.0,
    )


def test_without_reservation_small_work_refills_the_nodes_a_gang_needs() -> None:
    decisions = run_cycle(_fragmented(), CONFIG)
    assert nodes_of(decisions.bindings["small"]) == ["n0"]
    assert decisions.waiting["gang"].code is WaitCode.NO_CAPACITY


def test_a_starving_gang_reserves_one_draining_node_per_replica() -> None:
    decisions = run_cycle(_fragmented(), RESERVING)
    reason = decisions.waiting["gang"]
    assert reason.code is WaitCode.AWAITING_RELEASE
    # The two nodes with most room (n2: 3 free; n0 and n1: 2, ties by node order) are held
    assert "nodes n2, n0 reserved" in reason.detail
    # ... and the small job may only use what is left.
    placement = decisions.bindings["small"]
    assert nodes_of(placement) == ["n1"]


def test_reservation_waits_for_reserve_after_s() -> None:
    snap = replace(_fragmented(), now=3000.0)
    decisions = run_cycle(snap, RESERVING)
    assert decisions.waiting["gang"].code is not WaitCode.AWAITING_RELEASE


# -- a running workload holds the bid it won with (hold_winning_bid) -----------------------

HOLDING = replace(CONFIG, fairness=replace(CONFIG.fairness, hold_winning_bid=True))


def _long_job_that_waited_then_won() -> Snapshot:
    """'long' waited 10 hours, won its node an hour ago; 'fresh' has waited an hour."""
    return snapshot(
        job("long").gpus(4).submitted(0).attained(3600).running_on(("n0", range(4)), since=39_600),
        job("fresh").gpus(4).submitted(39_600),
        nodes=[node("n0", 4)],
        now=43_200.0,
    )


def test_without_holding_a_job_that_waited_long_is_outbid_right_after_it_won() -> None:
    decisions = run_cycle(_long_job_that_waited_then_won(), CONFIG)
    assert decisions.preemptions["long"].cause is PreemptionCause.OUTBID


def test_holding_its_winning_bid_protects_it_from_fresh_work() -> None:
    decisions = run_cycle(_long_job_that_waited_then_won(), HOLDING)
    assert "long" not in decisions.preemptions
    # It won with rho 6 x bonus (1 + 4 x 900 / 4,500) = 10.8; fresh work bids rho 5 x
    # bonus 5 = 25, under 10.8 x (1 + margin 2) = 32.4.
    assert decisions.bids["long"] == pytest.approx(10.8)
    assert decisions.bids["fresh"] == pytest.approx(25.0)


# -- in which order a tenant's guarantee serves its queue (guarantee_order) ----------------


def _two_jobs_one_guarantee() -> Snapshot:
    """Tenant a's 4 guaranteed GPUs, one 4-GPU node: a long job that has run a lot (low
    agent bid) was submitted first; a fresh job that has waited a little bids higher."""
    return snapshot(
        job("old").tenant("a").gpus(4).submitted(0).attained(100_000),
        job("new").tenant("a").gpus(4).submitted(9_000),
        nodes=[node("n0", 4)],
        tenants=[tenant("a", guaranteed=4)],
        now=10_000.0,
    )


def test_by_default_a_guarantee_serves_the_highest_bid_first() -> None:
    decisions = run_cycle(_two_jobs_one_guarantee(), CONFIG)
    assert set(decisions.bindings) == {"new"}


def test_arrival_order_makes_a_guarantee_serve_its_oldest_work_first() -> None:
    config = replace(CONFIG, guarantee_order=GuaranteeOrder.ARRIVAL)
    decisions = run_cycle(_two_jobs_one_guarantee(), config)
    assert set(decisions.bindings) == {"old"}
    assert decisions.prices["old"] == 0.0  # inside the guarantee: pays nothing
    assert decisions.queue_positions["new"] == 1


# -- the veterans' lane (veteran_share) ------------------------------------------------------

NO_LANE = replace(CONFIG, veteran_share=0.0)
WHOLE_LANE = replace(CONFIG, veteran_share=1.0, veteran_min_attained_s=3600.0)


def test_without_the_lane_a_long_running_job_is_outbid_by_work_that_waited() -> None:
    decisions = run_cycle(_long_job_that_waited_then_won(), NO_LANE)
    assert decisions.preemptions["long"].cause is PreemptionCause.OUTBID


def test_a_veteran_bids_the_ceiling_and_keeps_its_gpus() -> None:
    decisions = run_cycle(_long_job_that_waited_then_won(), WHOLE_LANE)
    assert "long" not in decisions.preemptions
    assert decisions.bids["long"] == CONFIG.fairness.max_bid_per_gpu_hour
    assert decisions.waiting["fresh"].code is WaitCode.OUTBID


def test_only_work_that_ran_veteran_min_attained_s_joins_the_lane() -> None:
    # 'long' has run 2 hours in all; the default bound is a day.
    day = replace(WHOLE_LANE, veteran_min_attained_s=CONFIG.veteran_min_attained_s)
    decisions = run_cycle(_long_job_that_waited_then_won(), day)
    assert decisions.preemptions["long"].cause is PreemptionCause.OUTBID


def _two_long_runners() -> Snapshot:
    """Two 4-GPU jobs have run for hours on an 8-GPU pool; a third has waited 3 hours."""
    return snapshot(
        job("longest").gpus(4).submitted(0).attained(20_000).running_on(("n0", range(4))),
        job("longer").gpus(4).submitted(0).attained(10_000).running_on(("n1", range(4))),
        job("fresh").gpus(4).submitted(30_000),
        nodes=[node("n0", 4), node("n1", 4)],
        now=40_800.0,
    )


def test_the_lane_is_bounded_and_keeps_the_job_that_ran_longest() -> None:
    half = replace(WHOLE_LANE, veteran_share=0.5)  # room for one 4-GPU job
    decisions = run_cycle(_two_long_runners(), half)
    assert "longest" not in decisions.preemptions
    assert decisions.preemptions["longer"].cause is PreemptionCause.OUTBID
    assert decisions.bids["longest"] == CONFIG.fairness.max_bid_per_gpu_hour
    assert decisions.bids["longer"] < decisions.bids["fresh"]


def test_a_preempted_veteran_gets_its_place_back_before_fresh_work() -> None:
    state = snapshot(
        job("veteran").gpus(4).submitted(0).attained(50_000),
        job("fresh").gpus(4).submitted(60_000),
        nodes=[node("n0", 4)],
        now=70_000.0,
    )
    assert set(run_cycle(state, NO_LANE).bindings) == {"fresh"}
    assert set(run_cycle(state, WHOLE_LANE).bindings) == {"veteran"}


@pytest.mark.parametrize(
    "builder",
    [
        job("long").gpus(4).bid(2.0),  # an explicit bid is the tenant's own choice
        job("long").gpus(4).inference(),  # a service runs forever: not a long job
    ],
    ids=["explicit-bid", "inference"],
)
def test_explicit_bids_and_services_never_join_the_lane(builder: JobBuilder) -> None:
    long = builder.submitted(0).attained(50_000).running_on(("n0", range(4))).build()
    state = snapshot(long, job("fresh").gpus(4).bid(100.0), nodes=[node("n0", 4)], now=60_000)
    decisions = run_cycle(state, WHOLE_LANE)
    assert decisions.bids["long"] < CONFIG.fairness.max_bid_per_gpu_hour
