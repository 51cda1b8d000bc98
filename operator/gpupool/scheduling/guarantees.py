"""Which GPUs a tenant uses inside its guarantee, and which it borrows.

A tenant's running workloads are counted against ``guaranteed_gpus`` first-fit in
this order (total; last tie broken by UID):

1. higher tier first;
2. earlier start first (the oldest work is the most protected);
3. UID.

Workloads that fit are *inside the guarantee* (never preempted by borrowers,
pay nothing); the rest are *borrowers* (pay the clearing price, may be outbid
or reclaimed).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from operator import is_

from gpupool.scheduling.model import Tenant, TenantName, Workload, WorkloadUid

GuaranteeEntry = tuple[int, float, WorkloadUid, Workload, float]
"""A running workload in the order of the module docstring: (-tier, started at, UID,
workload, GPUs it holds); the natural order of these tuples is that order (UIDs are
distinct, so the workload itself is never compared)."""


def guarantee_entry(workload: Workload, gpus: float) -> GuaranteeEntry:
    """A running workload holding ``gpus`` GPUs, decorated for :func:`split_running`.
    Depends on the workload object alone, so a cycle carries it along."""
    allocation = workload.allocation
    started = allocation.started_at if allocation is not None else 0.0
    return (-workload.tier, started, workload.uid, workload, gpus)


def split_running(
    running: Iterable[GuaranteeEntry], tenants: Mapping[TenantName, Tenant]
) -> tuple[set[WorkloadUid], dict[TenantName, float], dict[TenantName, float]]:
    """``(uids inside their guarantee, guaranteed GPUs used, all GPUs used)`` per tenant.

    ``running``: each running workload's :func:`guarantee_entry` (distinct UIDs).
    """
    by_tenant: dict[TenantName, list[GuaranteeEntry]] = {}
    used: dict[TenantName, float] = {}
    for entry in running:
        name = entry[3].tenant
        members = by_tenant.get(name)
        if members is None:
            by_tenant[name] = [entry]
            used[name] = entry[4]
        else:
            members.append(entry)
            used[name] += entry[4]
    inside: set[WorkloadUid] = set()
    guaranteed_used: dict[TenantName, float] = {}
    for name, members in by_tenant.items():
        tenant = tenants.get(name)
        guarantee = float(tenant.guaranteed_gpus) if tenant is not None else 0.0
        if used[name] <= guarantee:
            inside.update(entry[2] for entry in members)
            guaranteed_used[name] = used[name]
            continue
        chosen, total = _first_fit(name, members, guarantee)
        inside.update(chosen)
        guaranteed_used[name] = total
    return inside, guaranteed_used, used


_FITS: dict[TenantName, tuple[list[GuaranteeEntry], float, list[WorkloadUid], float]] = {}
"""Per tenant, the last first-fit: (members, guarantee, UIDs inside, their GPUs). The running
set changes little between cycles and a cycle carries each running workload's entry
along (the same object), so a tenant's members are usually the very same entries: the
fit is then the same. A cache of a pure function, like the carried facts."""
_FITS_MAX = 1024


def forget_fits() -> None:
    """Drop the cached first-fits (the next split derives every fit again)."""
    _FITS.clear()


def _first_fit(
    name: TenantName, members: list[GuaranteeEntry], guarantee: float
) -> tuple[list[WorkloadUid], float]:
    """The members inside ``guarantee``, first-fit in entry order, and their GPUs."""
    hit = _FITS.get(name)
    if (
        hit is not None
        and hit[1] == guarantee
        and len(hit[0]) == len(members)
        and all(map(is_, hit[0], members))
    ):
        return hit[2], hit[3]
    kept = list(members)
    # A heap of the entries (already decorated with the order), not a sort: first-fit
    # stops once not even the smallest member fits, which is usually long before the
    # end of a tenant that borrows a lot.
    smallest = min(entry[4] for entry in members)
    heapq.heapify(members)
    total = 0.0
    chosen: list[WorkloadUid] = []
    while members and total + smallest <= guarantee:
        _, _, uid, _, gpus = heapq.heappop(members)
        if total + gpus <= guarantee:
            total += gpus
            chosen.append(uid)
    if len(_FITS) >= _FITS_MAX:
        _FITS.clear()
    _FITS[name] = (kept, guarantee, chosen, total)
    return chosen, total
