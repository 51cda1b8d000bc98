"""Credit balances and per-workload spend across cycles (the arithmetic is the core's).

Between two cycles every workload pays the price the first one set, for the GPUs
it held: at each cycle the ledger settles the elapsed interval with
:func:`gpupool.scheduling.credits.settle_all` and then records the new cycle's
prices as the charges of the next interval. Balances start from the pool's
persisted ``status.tenants[].credits`` (a full budget for a new tenant), spend
from each job's ``status.creditsSpent``, so a restarted or newly elected
operator continues the books.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gpupool.scheduling.credits import Charge, settle_all, spend_credits
from gpupool.scheduling.model import Tenant, TenantName


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadCharge:
    uid: str
    tenant: TenantName
    price_per_gpu_hour: float
    gpus: float


class CreditLedger:
    """Mutable books of one pool, owned by that pool's scheduling loop."""

    def __init__(self) -> None:
        self._balances: dict[str, float] | None = None
        self._spent: dict[str, float] = {}
        self._charges: tuple[WorkloadCharge, ...] = ()
        self._last_now: float | None = None

    def balances(self, persisted: Mapping[str, float]) -> Mapping[str, float]:
        """Current balances (seeded from the pool status the first time)."""
        if self._balances is None:
            self._balances = dict(persisted)
        return dict(self._balances)

    def settle(self, *, now: float, tenants: Mapping[TenantName, Tenant]) -> Mapping[str, float]:
        """Charge the interval since the last cycle; the new balances (tenant -> credits)."""
        elapsed = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._last_now = now
        statements = settle_all(
            tenants,
            (
                Charge(tenant=c.tenant, price_per_gpu_hour=c.price_per_gpu_hour, gpus=c.gpus)
                for c in self._charges
            ),
            elapsed_s=elapsed,
        )
        for charge in self._charges:
            self._spent[charge.uid] = self._spent.get(charge.uid, 0.0) + spend_credits(
                price_per_gpu_hour=charge.price_per_gpu_hour, gpus=charge.gpus, elapsed_s=elapsed
            )
        self._balances = {
            str(name): statement.tenant.credit_balance for name, statement in statements.items()
        }
        return dict(self._balances)

    def charge_next_interval(self, charges: tuple[WorkloadCharge, ...]) -> None:
        self._charges = charges

    def spent(self, uid: str, *, persisted: float | None) -> float:
        """Credits a workload has spent, continuing from its persisted status."""
        if uid not in self._spent:
            self._spent[uid] = persisted or 0.0
        return self._spent[uid]

    def forget(self, live_uids: set[str]) -> None:
        """Drop the spend of workloads that left the pool (memory stays bounded)."""
        self._spent = {uid: spent for uid, spent in self._spent.items() if uid in live_uids}
