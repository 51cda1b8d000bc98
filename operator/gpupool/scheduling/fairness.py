"""The fairness agent: a default bid for every workload without an explicit one.

Themis (NSDI'20) allocates contested GPUs to the jobs whose finish-time
fairness rho = T_shared / T_independent is worst. The agent estimates rho
without knowing run times:

    attained  A = seconds run so far (all allocations)
    waited    W = seconds in the system not running
    remaining R = max(A, prior_duration_s)   (or the user's hint, when given)
    rho       = (W + A + R) / (A + R)

A job that has waited long for its size gets a high rho; a short job waiting
grows fastest (small A + R), which favours short jobs the way least-attained-
service does, while a long job's rho still grows without bound as it waits,
so nobody starves. The bid per GPU-hour is

    base_bid_per_gpu_hour * rho * (1 + short_job_bonus * prior / (prior + A))

the last factor (between 1 and 1 + short_job_bonus) favouring jobs that have run
little (likely short, Tiresias' least-attained-service insight), so that a new
job may outbid a long-running one once it has waited a little.
"""

from __future__ import annotations

from gpupool.scheduling.config import FairnessAgentConfig
from gpupool.scheduling.model import Workload


def attained_service_s(workload: Workload, now: float) -> float:
    """Seconds the workload has run, counting its current allocation up to ``now``."""
    allocation = workload.allocation
    attained = workload.attained_service_s
    if allocation is not None:
        attained += max(0.0, now - allocation.started_at)
    return attained


def estimated_rho(workload: Workload, now: float, config: FairnessAgentConfig) -> float:
    """Estimated finish-time fairness if the workload ran uninterrupted from now on."""
    return _rho_at(workload, now, attained_service_s(workload, now), config)


def _rho_at(workload: Workload, at: float, attained: float, config: FairnessAgentConfig) -> float:
    """Estimated rho at time ``at`` of a workload that has run ``attained`` seconds."""
    waited = max(0.0, at - workload.submitted_at - attained)
    hint = workload.expected_duration_s
    if hint is not None and hint > 0:
        remaining = max(hint - attained, 0.1 * hint)
    else:
        remaining = max(attained, config.prior_duration_s)
    denominator = attained + remaining
    if denominator <= 0:
        return 1.0
    return (waited + denominator) / denominator


def fairness_bid(
    workload: Workload, now: float, config: FairnessAgentConfig, *, weight: float = 1.0
) -> float:
    """The agent's bid per GPU-hour (before the tenant's credit cap).

    ``weight`` is the tenant's weight factor (:func:`gpupool.scheduling.auction.weight_factors`):
    it scales the base bid. A running workload bids at least what it bid when it won its
    GPUs when ``config.hold_winning_bid`` is set (see :class:`FairnessAgentConfig`).
    """
    bid = _bid_at(
        workload, now, attained_service_s(workload, now), workload.allocation is None, config
    )
    allocation = workload.allocation
    if config.hold_winning_bid and allocation is not None:
        won = _bid_at(workload, allocation.started_at, workload.attained_service_s, True, config)
        bid = max(bid, won)
    return min(config.base_bid_per_gpu_hour * weight * bid, config.max_bid_per_gpu_hour)


def _bid_at(
    workload: Workload, at: float, attained: float, pending: bool, config: FairnessAgentConfig
) -> float:
    """rho x short-job bonus (+ age while pending), per unit of base bid, at time ``at``."""
    rho = _rho_at(workload, at, attained, config)
    prior = config.prior_duration_s
    bonus = 1.0 + config.short_job_bonus * prior / (prior + attained) if prior > 0 else 1.0
    bid = rho * bonus
    if (
        config.aging_s > 0
        and pending
        and (workload.preemptions > 0 or not config.aging_requeued_only)
    ):
        queued_at = workload.submitted_at if workload.queued_at is None else workload.queued_at
        bid += max(0.0, at - queued_at) / config.aging_s
    return bid
