"""Credit accounting over time: pure functions of durations, never of a clock.

Over an interval of ``elapsed_s`` seconds in which a tenant accrues
``credits_per_hour`` and its borrowers pay their prices:

    spend   = sum over its workloads of price_per_gpu_hour * gpus * elapsed_s / 3600
    balance = min(credits_max, balance + accrual - spend), never below 0

Spend is what the interval cost; if the balance cannot cover it, the tenant pays
what it has and the rest is recorded as ``unpaid_credits`` (the next cycle's bids
are capped by the empty balance, so its borrowers lose their GPUs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from gpupool.scheduling.model import Tenant, TenantName

SECONDS_PER_HOUR = 3600.0


def spend_credits(*, price_per_gpu_hour: float, gpus: float, elapsed_s: float) -> float:
    """Credits a workload owes for holding ``gpus`` at a price for ``elapsed_s``."""
    if price_per_gpu_hour <= 0 or gpus <= 0 or elapsed_s <= 0:
        return 0.0
    return price_per_gpu_hour * gpus * elapsed_s / SECONDS_PER_HOUR


def accrued_credits(tenant: Tenant, elapsed_s: float) -> float:
    """Credits the tenant earns over ``elapsed_s`` (before the ``credits_max`` cap)."""
    if elapsed_s <= 0:
        return 0.0
    return max(0.0, tenant.credits_per_hour) * elapsed_s / SECONDS_PER_HOUR


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditStatement:
    tenant: Tenant
    """The tenant with its new balance."""
    accrued: float
    spent: float
    """Credits actually paid (never more than the balance plus accrual)."""
    unpaid: float
    """Spend the balance could not cover."""


def settle(tenant: Tenant, *, spend: float, elapsed_s: float) -> CreditStatement:
    """Apply one interval's accrual and spend to a tenant; the balance stays in [0, max]."""
    accrued = accrued_credits(tenant, elapsed_s)
    available = max(0.0, tenant.credit_balance) + accrued
    spend = max(0.0, spend)
    paid = min(spend, available)
    balance = max(0.0, min(max(tenant.credits_max, 0.0), available - paid))
    unchanged = balance == tenant.credit_balance and balance != 0.0  # (0.0 may be -0.0)
    return CreditStatement(
        tenant=tenant if unchanged else replace(tenant, credit_balance=balance),
        accrued=accrued,
        spent=paid,
        unpaid=spend - paid,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Charge:
    """One workload's use of borrowed GPUs over the interval being settled."""

    tenant: TenantName
    price_per_gpu_hour: float
    gpus: float


def settle_all(
    tenants: Mapping[TenantName, Tenant], charges: Iterable[Charge], *, elapsed_s: float
) -> dict[TenantName, CreditStatement]:
    """Settle every tenant for an interval in which ``charges`` held their prices."""
    spend: dict[TenantName, float] = {}
    for charge in charges:
        spend[charge.tenant] = spend.get(charge.tenant, 0.0) + spend_credits(
            price_per_gpu_hour=charge.price_per_gpu_hour, gpus=charge.gpus, elapsed_s=elapsed_s
        )
    return {
        name: settle(tenant, spend=spend.get(name, 0.0), elapsed_s=elapsed_s)
        for name, tenant in tenants.items()
    }
