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

from collections.abc import Iterable, Mapping
from operator import itemgetter

from gpupool.scheduling.facts import WorkloadFacts, facts_of
from gpupool.scheduling.model import Tenant, TenantName, Workload, WorkloadUid

RunningEntry = tuple[Workload, float, WorkloadFacts]
"""A running workload, the GPUs it holds and its :class:`WorkloadFacts`."""

_first = itemgetter(0)


def split_running(
    running: Iterable[tuple[Workload, float]], tenants: Mapping[TenantName, Tenant]
) -> tuple[set[WorkloadUid], dict[TenantName, float], dict[TenantName, float]]:
    """``(uids inside their guarantee, guaranteed GPUs used, all GPUs used)`` per tenant.

    ``running`` pairs each running workload with the GPUs it holds.
    """
    return split_running_facts(
        [(workload, gpus, facts_of(workload)) for workload, gpus in running], tenants
    )


def split_running_facts(
    running: Iterable[RunningEntry], tenants: Mapping[TenantName, Tenant]
) -> tuple[set[WorkloadUid], dict[TenantName, float], dict[TenantName, float]]:
    """:func:`split_running` for entries that carry their facts (what a cycle has)."""
    by_tenant: dict[TenantName, list[RunningEntry]] = {}
    used: dict[TenantName, float] = {}
    for entry in running:
        name = entry[0].tenant
        members = by_tenant.get(name)
        if members is None:
            by_tenant[name] = [entry]
            used[name] = entry[1]
        else:
            members.append(entry)
            used[name] += entry[1]
    inside: set[WorkloadUid] = set()
    guaranteed_used: dict[TenantName, float] = {}
    for name, members in by_tenant.items():
        tenant = tenants.get(name)
        guarantee = float(tenant.guaranteed_gpus) if tenant is not None else 0.0
        if used[name] <= guarantee:
            inside.update(entry[0].uid for entry in members)
            guaranteed_used[name] = used[name]
            continue
        # Sort by the memoised order key (decorated: no Python call per comparison key).
        keyed = [(facts.guarantee_key, workload, gpus) for workload, gpus, facts in members]
        keyed.sort(key=_first)
        total = 0.0
        for _, workload, gpus in keyed:
            if total + gpus <= guarantee:
                total += gpus
                inside.add(workload.uid)
        guaranteed_used[name] = total
    return inside, guaranteed_used, used
