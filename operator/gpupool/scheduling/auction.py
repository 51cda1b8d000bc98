"""Bids and prices for borrowed capacity.

Pricing rule: a uniform clearing price, capped per winner at its own bid.

    clearing price = max(reserve price, highest bid that lost for lack of GPUs)
    a borrower pays  min(its bid, clearing price) per GPU-hour
    inside a guarantee it pays 0

Why: the highest losing bid is the (k+1)-th price generalised to a uniform
market price, so a one-GPU bidder gains nothing by shading its bid (it never
sets its own price while it wins) and everyone sees one number for the cost of a
borrowed GPU-hour (``status.clearingPricePerGPUHour``). Gangs and placement
make the allocation non-convex: a small job can win a hole a bigger, higher
bidder could not use, so the clearing price can exceed a winner's bid; the cap
keeps the guarantee that a winner never pays more than it bid. Exact critical
values (Lehmann, O'Callaghan, Shoham) would need one re-run of the greedy pass
per winner, too slow for 20,000 pending workloads per cycle.

Winners are chosen greedily by bid per GPU-hour (bid density) under gang and
placement feasibility; capacity seen by a workload only shrinks as the pass goes
on, so raising a bid (which only moves a workload earlier, and only widens the
set of borrowers it may outbid) never turns a win into a loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from gpupool.scheduling.config import PoolConfig
from gpupool.scheduling.fairness import fairness_bid
from gpupool.scheduling.model import Allocation, Tenant, TenantName, Workload

SECONDS_PER_HOUR = 3600.0


def credit_cap_per_gpu_hour(tenant: Tenant, gpus: float, horizon_s: float) -> float:
    """The highest bid per GPU-hour the tenant can pay for ``gpus`` over ``horizon_s``:
    its balance plus what it earns meanwhile, spread over those GPU-hours (so a tenant
    can always sustain bids worth its income)."""
    if gpus <= 0 or horizon_s <= 0:
        return math.inf
    hours = horizon_s / SECONDS_PER_HOUR
    budget = max(0.0, tenant.credit_balance) + max(0.0, tenant.credits_per_hour) * hours
    return budget / (gpus * hours)


def weight_factors(tenants: Iterable[Tenant]) -> dict[TenantName, float]:
    """Each tenant's weight over the pool's mean weight: what the fairness agent's bids
    for the tenant's workloads are multiplied by.

    So where work of several tenants contends for borrowed GPUs, a tenant of weight 2
    outbids equally-starved work of a tenant of weight 1 (explicit bids are the user's
    own and are not scaled; neither are the veterans' ceiling bids). Empty when every
    weight is the same: every factor would be 1 and bids stay as they are.
    """
    weights = {tenant.name: tenant.weight for tenant in tenants}
    if len(set(weights.values())) <= 1:
        return {}
    mean = sum(weights.values()) / len(weights)
    return {name: weight / mean for name, weight in weights.items()}


def raw_bid(workload: Workload, now: float, config: PoolConfig, *, weight: float = 1.0) -> float:
    """The explicit bid, or the fairness agent's bid (times the tenant's weight factor)."""
    if workload.bid_per_gpu_hour is not None:
        return max(0.0, workload.bid_per_gpu_hour)
    return fairness_bid(workload, now, config.fairness, weight=weight)


def effective_bid(
    workload: Workload,
    tenant: Tenant,
    gpus: float,
    now: float,
    config: PoolConfig,
    *,
    weight: float = 1.0,
) -> float:
    """What the workload bids for ``gpus`` borrowed GPUs: its bid capped by credits."""
    return min(
        raw_bid(workload, now, config, weight=weight),
        credit_cap_per_gpu_hour(tenant, gpus, config.credit_horizon_s),
    )


def clearing_price(reserve_price: float, highest_losing_bid: float | None) -> float:
    """The pool's uniform price for a borrowed GPU-hour this cycle."""
    if highest_losing_bid is None:
        return reserve_price
    return max(reserve_price, highest_losing_bid)


def borrower_price(bid: float, clearing: float) -> float:
    """What a winning borrower pays: the uniform price, never above its own bid."""
    return min(bid, clearing)


BidConstants = tuple[float | None, float, float, float, float | None]
"""What a pending workload's bid takes from the workload object alone: see
:meth:`Bidder.pending_constants`."""


class Bidder:
    """Effective bids of one cycle, with the constants hoisted (called ~50,000 times).

    Computes exactly what :func:`effective_bid` and :func:`raw_bid` compute.
    """

    __slots__ = (
        "_aging_all",
        "_aging_s",
        "_base",
        "_bases",
        "_bonus",
        "_hold",
        "_hours",
        "_max_bid",
        "_now",
        "_prior",
        "veterans",
    )

    def __init__(
        self, now: float, config: PoolConfig, weights: Mapping[TenantName, float] | None = None
    ) -> None:
        fairness = config.fairness
        self._now = now
        self._base = fairness.base_bid_per_gpu_hour
        self._bases: dict[str, float] = {
            name: self._base * factor for name, factor in (weights or {}).items()
        }
        """Per-tenant base bids (base x :func:`weight_factors`); empty: all ``_base``."""
        self._prior = fairness.prior_duration_s
        self._max_bid = fairness.max_bid_per_gpu_hour
        self._bonus = fairness.short_job_bonus
        self._aging_s = fairness.aging_s
        self._aging_all = not fairness.aging_requeued_only
        self._hold = fairness.hold_winning_bid
        self._hours = config.credit_horizon_s / SECONDS_PER_HOUR
        self.veterans: frozenset[str] = frozenset()
        """The veterans' lane of this cycle (:mod:`gpupool.scheduling.veterans`): they
        bid the ceiling, ``max_bid_per_gpu_hour`` (then capped by credits)."""

    @property
    def base_bid(self) -> float:
        return self._base

    @property
    def bases(self) -> Mapping[str, float]:
        """Base bid per tenant where weights differ (empty: :attr:`base_bid` for all)."""
        return self._bases

    @property
    def max_bid(self) -> float:
        return self._max_bid

    @property
    def aging_s(self) -> float:
        return self._aging_s

    def raw(self, workload: Workload) -> float:
        explicit = workload.bid_per_gpu_hour
        if explicit is not None:
            return explicit if explicit > 0.0 else 0.0
        if workload.uid in self.veterans:
            return self._max_bid
        now = self._now
        allocation = workload.allocation
        attained = workload.attained_service_s
        if allocation is None:
            bid = self._unscaled(workload, now, attained, True)
        else:
            started = allocation.started_at
            bid = self._unscaled(
                workload, now, attained + (now - started) if now > started else attained, False
            )
            if self._hold:
                won = self._unscaled(workload, started, attained, True)
                bid = max(bid, won)
        bid = (self._bases.get(workload.tenant, self._base) if self._bases else self._base) * bid
        return bid if bid < self._max_bid else self._max_bid

    def _unscaled(self, workload: Workload, at: float, attained: float, pending: bool) -> float:
        waited = at - workload.submitted_at - attained
        hint = workload.expected_duration_s
        if hint is not None and hint > 0:
            remaining = max(hint - attained, 0.1 * hint)
        else:
            remaining = attained if attained > self._prior else self._prior
        denominator = attained + remaining
        if denominator <= 0:
            rho = 1.0
        else:
            rho = ((waited if waited > 0 else 0.0) + denominator) / denominator
        prior = self._prior
        bonus = 1.0 + self._bonus * prior / (prior + attained) if prior > 0 else 1.0
        bid = rho * bonus
        if self._aging_s > 0 and pending and (workload.preemptions > 0 or self._aging_all):
            queued_at = workload.queued_at
            queued = at - (workload.submitted_at if queued_at is None else queued_at)
            bid += (queued if queued > 0 else 0.0) / self._aging_s
        return bid

    def pending_constants(self, workload: Workload) -> BidConstants:
        """What a pending workload's bid (:meth:`effective`) takes from the workload object
                alone (the same every cycle while the object is unchanged);
        :func:`~.queue_order.order_queue`
                finishes it.

                ``(explicit bid or None, attained, denominator, bonus, aging start or None)``:
                the explicit bid already clamped at 0; the aging start is ``None`` when the
                workload does not age.
        """
        explicit = workload.bid_per_gpu_hour
        if explicit is not None:
            return (explicit if explicit > 0.0 else 0.0, 0.0, 0.0, 0.0, None)
        attained = workload.attained_service_s
        prior = self._prior
        hint = workload.expected_duration_s
        if hint is not None and hint > 0:
            remaining = max(hint - attained, 0.1 * hint)
        else:
            remaining = attained if attained > prior else prior
        denominator = attained + remaining
        bonus = 1.0 + self._bonus * prior / (prior + attained) if prior > 0 else 1.0
        aging_from: float | None = None
        if self._aging_s > 0 and (workload.preemptions > 0 or self._aging_all):
            queued_at = workload.queued_at
            aging_from = workload.submitted_at if queued_at is None else queued_at
        return (None, attained, denominator, bonus, aging_from)

    def budget(self, tenant: Tenant) -> float:
        """The tenant's credits over the horizon (the numerator of :meth:`_capped`'s cap)."""
        balance = tenant.credit_balance
        income = tenant.credits_per_hour
        return (balance if balance > 0 else 0.0) + (income if income > 0 else 0.0) * self._hours

    def gpu_hours(self, gpus: float) -> float | None:
        """The denominator of :meth:`_capped`'s cap for ``gpus`` (``None``: no cap)."""
        hours = self._hours
        if gpus <= 0 or hours <= 0:
            return None
        return gpus * hours

    def effective_running(
        self, workload: Workload, allocation: Allocation, tenant: Tenant, gpus: float
    ) -> float:
        """:meth:`effective` of a running workload (``allocation`` is its allocation), inlined.

        For speed (one Python call per running borrower instead of three): :meth:`raw` and
        :meth:`_unscaled` (with ``pending=False``, so no aging) then :meth:`_capped`,
        operation for operation, bit-identical.
        """
        explicit = workload.bid_per_gpu_hour
        if explicit is not None:
            bid = explicit if explicit > 0.0 else 0.0
        elif workload.uid in self.veterans:
            bid = self._max_bid
        else:
            now = self._now
            started = allocation.started_at
            before = workload.attained_service_s
            attained = before + (now - started) if now > started else before
            prior = self._prior
            waited = now - workload.submitted_at - attained
            hint = workload.expected_duration_s
            if hint is not None and hint > 0:
                remaining = max(hint - attained, 0.1 * hint)
            else:
                remaining = attained if attained > prior else prior
            denominator = attained + remaining
            if denominator <= 0:
                rho = 1.0
            else:
                rho = ((waited if waited > 0 else 0.0) + denominator) / denominator
            bonus = 1.0 + self._bonus * prior / (prior + attained) if prior > 0 else 1.0
            bid = rho * bonus
            if self._hold:
                won = self._unscaled(workload, started, before, True)
                bid = max(bid, won)
            bid = (
                self._bases.get(workload.tenant, self._base) if self._bases else self._base
            ) * bid
            bid = bid if bid < self._max_bid else self._max_bid
        # _capped, inlined (one call fewer per running borrower and cycle).
        hours = self._hours
        if gpus <= 0 or hours <= 0:
            return bid
        balance = tenant.credit_balance
        income = tenant.credits_per_hour
        budget = (balance if balance > 0 else 0.0) + (income if income > 0 else 0.0) * hours
        cap = budget / (gpus * hours)
        return bid if bid < cap else cap

    def effective(self, workload: Workload, tenant: Tenant, gpus: float) -> float:
        return self._capped(self.raw(workload), tenant, gpus)

    def _capped(self, bid: float, tenant: Tenant, gpus: float) -> float:
        """``bid`` capped by what the tenant's credits pay for ``gpus`` over the horizon
        (:func:`credit_cap_per_gpu_hour`)."""
        hours = self._hours
        if gpus <= 0 or hours <= 0:
            return bid
        balance = tenant.credit_balance
        income = tenant.credits_per_hour
        budget = (balance if balance > 0 else 0.0) + (income if income > 0 else 0.0) * hours
        cap = budget / (gpus * hours)
        return bid if bid < cap else cap
