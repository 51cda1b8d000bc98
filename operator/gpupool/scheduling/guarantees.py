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

from gpupool.scheduling.model import Tenant, TenantName, Workload, WorkloadUid


def split_running(
    running: Iterable[tuple[Workload, float]], tenants: Mapping[TenantName, Tenant]
) -> tuple[set[WorkloadUid], dict[TenantName, float], dict[TenantName, float]]:
    """``(uids inside their guarantee, guaranteed GPUs used, all GPUs used)`` per tenant.

    ``running`` pairs each running workload with the GPUs it holds.
    """
    by_tenant: dict[TenantName, list[tuple[Workload, float]]] = {}
    used: dict[TenantName, float] = {}
    for pair in running:
        name = pair[0].tenant
        members = by_tenant.get(name)
        if members is None:
            by_tenant[name] = [pair]
            used[name] = pair[1]
        else:
            members.append(pair)
            used[name] += pair[1]
    inside: set[WorkloadUid] = set()
    guaranteed_used: dict[TenantName, float] = {}
    for name, members in by_tenant.items():
        tenant = tenants.get(name)
        guarantee = float(tenant.guaranteed_gpus) if tenant is not None else 0.0
        if used[name] <= guarantee:
            inside.update(w.uid for w, _ in members)
            guaranteed_used[name] = used[name]
            continue
        # Decorated with the order of the module docstring (tier, start, UID), built inline
        # and compared as plain tuples (no Python call per member); the position breaks
        # a full tie the way a stable sort would, so a workload is never compared. A heap,
        # not a sort: first-fit stops once not even the smallest member fits, which is
        # usually long before the end of a tenant that borrows a lot.
        keyed = [
            (
                -workload.tier,
                workload.allocation.started_at if workload.allocation is not None else 0.0,
                workload.uid,
                position,
                workload,
                gpus,
            )
            for position, (workload, gpus) in enumerate(members)
        ]
        smallest = min(gpus for _, gpus in members)
        heapq.heapify(keyed)
        total = 0.0
        while keyed and total + smallest <= guarantee:
            _, _, _, _, workload, gpus = heapq.heappop(keyed)
            if total + gpus <= guarantee:
                total += gpus
                inside.add(workload.uid)
        guaranteed_used[name] = total
    return inside, guaranteed_used, used
