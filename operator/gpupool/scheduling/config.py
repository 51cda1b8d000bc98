"""Pool-level knobs of a scheduling cycle (``GPUPool.spec.auction/preemption/health``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class GuaranteeOrder(enum.Enum):
    """In which order a tenant's pending work fills its unused guarantee."""

    BID = "bid"
    """Highest bid first, like the auction (short and long-waiting work first)."""
    ARRIVAL = "arrival"
    """Submission order: the guarantee behaves like the tenant's own FIFO cluster (a
    preempted job keeps its place), and bids only order borrowed capacity."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthThresholds:
    """Telemetry limits past which a GPU is taken out of the pool."""

    max_temperature_c: float = 90.0
    evict_on_xid: frozenset[int] = frozenset({48, 63, 64, 74, 79})
    max_uncorrected_ecc_errors: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FairnessAgentConfig:
    """How the fairness agent bids for workloads without an explicit bid.

    The agent estimates a workload's finish-time fairness
    rho = (time in system + remaining) / (attained + remaining), with the
    remaining time unknown and estimated as ``max(attained, prior_duration_s)``
    (heavy-tailed run times: the longer a job has run, the longer it will run),
    and bids ``base_bid_per_gpu_hour * rho * (1 + short_job_bonus * prior / (prior
    + attained))`` per GPU-hour, capped by credits. The bonus is Tiresias' insight
    in bid form: with heavy-tailed run times, a job that has run little is likely
    to finish soon, so giving it GPUs first shortens the average completion time.
    """

    base_bid_per_gpu_hour: float = 1.0
    prior_duration_s: float = 900.0
    short_job_bonus: float = 4.0
    aging_s: float = 0.0
    """A pending workload bids ``base_bid * queued / aging_s`` more, ``queued`` being the
    time since it last entered the queue (0 disables). An absolute age term: a job that
    has run long has a rho that grows slowly, yet it still gets back within a bounded
    wait. Running workloads get no age term (it would make them unpreemptable)."""
    aging_requeued_only: bool = True
    """Age only workloads that were preempted before (new work already bids by rho)."""
    hold_winning_bid: bool = False
    """A running workload bids at least what it bid when it won its GPUs (a lease at the
    winning bid): its rho falls as it runs, but whoever outbids it must beat the bid it
    won with. Without it, a job that waited long to get back in is outbid again minutes
    later by fresh work, and long jobs drift to the end of an overloaded period."""
    max_bid_per_gpu_hour: float = 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolConfig:
    reserve_price_per_gpu_hour: float = 0.05
    """No borrowed GPU is sold below this; a bid under it cannot borrow."""
    grace_period_s: float = 120.0
    """Checkpoint window a preempted workload gets before its GPUs are reclaimed."""
    min_runtime_s: float = 300.0
    """A borrower is not preempted by a higher bid before running this long (anti-thrash)."""
    outbid_margin_ratio: float = 2.0
    """A borrower outbids a running borrower only with a bid above the victim's bid times
    ``1 + outbid_margin_ratio`` (preempting costs the victim its grace period and a
    restart, so a marginally higher bid does not justify it)."""
    reserve_after_s: float | None = None
    """Opt-in. Once per cycle, the first workload that finds no room (even by preemption) after
    waiting this long reserves the node closest to fitting one replica: its free GPUs are
    held back so the node drains for it, instead of being refilled by smaller work
    (big gangs would otherwise starve behind a stream of small ones). ``None``: never."""
    max_outbid_preemptions: int | None = None
    """A borrower preempted this many times already is not outbid again (it still yields
    to higher tiers and guarantees); bounds how often one job is set back. ``None``:
    no bound."""
    guarantee_order: GuaranteeOrder = GuaranteeOrder.BID
    veteran_share: float = 0.35
    """Fraction of the pool's GPUs kept for the training work that has run longest (the
    veterans' lane, :mod:`gpupool.scheduling.veterans`): veterans bid the ceiling, so the
    longest jobs are not pushed to the end of an overloaded period (makespan and
    utilization). 0 disables the lane."""
    veteran_age_credit: float = 0.3
    """Orders the veterans' lane by a *claim*: attained service, or this fraction of the
    time since submission if that is more, so a long job that was starved before it
    joined is not overtaken forever by luckier ones (:mod:`gpupool.scheduling.veterans`).
    0 orders by attained service alone."""
    veteran_min_attained_s: float = 86_400.0
    """Run time a workload needs before it can join the veterans' lane: a day, so that
    the lane holds the long jobs that set the makespan, not whatever ran an hour."""
    credit_horizon_s: float = 3600.0
    """A bid is capped so the tenant's balance can pay it for this long."""
    preemption_visit_budget: int = 10_000
    """Victims a cycle may examine while searching preemption plans; bounds the cost of
    a cycle on a huge pool. Candidates left when it runs out wait for the next cycle."""
    health: HealthThresholds = field(default_factory=HealthThresholds)
    fairness: FairnessAgentConfig = field(default_factory=FairnessAgentConfig)
