"""GPUPool ``status`` after a cycle: capacity, health, allocation, price, tenants (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpupool.k8s import names
from gpupool.k8s.conditions import set_condition
from gpupool.loop.actions import Change
from gpupool.loop.status import minimal_patch
from gpupool.loop.unavailable import problems_in_words, summarise
from gpupool.scheduling.decisions import Decisions
from gpupool.scheduling.health import is_usable
from gpupool.state.records import PoolRecord
from gpupool.state.snapshot import BuiltSnapshot

DEGRADED_SHOWN = 5
"""Problems the Degraded condition names before it says "and N more"."""


def degraded_reason(built: BuiltSnapshot) -> str:
    nodes = bool(built.node_problems)
    gpus = any(node not in built.node_problems for node, _ in built.gpu_problems)
    if nodes and gpus:
        return "NodesAndGPUsUnavailable"
    if nodes:
        return "NodesUnavailable"
    return "GPUsUnhealthy" if gpus else "AllNodesHealthy"


def held_gpus(built: BuiltSnapshot, decisions: Decisions) -> dict[str, float]:
    """GPU units each tenant holds once this cycle's bindings land."""
    held: dict[str, float] = {}
    workloads = built.snapshot.workloads
    for workload in workloads.values():
        if workload.allocation is not None:
            held[workload.tenant] = held.get(workload.tenant, 0.0) + workload.allocated_gpus()
    for uid, placement in decisions.bindings.items():
        bound = workloads.get(uid)
        if bound is not None:
            units = len(placement) * bound.gpus_per_replica_units
            held[bound.tenant] = held.get(bound.tenant, 0.0) + units
    return held


def pool_status(
    pool: PoolRecord,
    built: BuiltSnapshot,
    decisions: Decisions,
    *,
    balances: Mapping[str, float],
    now: float,
    raw_status: Mapping[str, Any],
) -> dict[str, Any]:
    """The whole status the pool should show after this cycle."""
    snapshot = built.snapshot
    thresholds = built.config.health
    total = sum(len(node.gpus) for node in snapshot.nodes)
    healthy_gpus = {
        (node.name, gpu.index)
        for node in snapshot.nodes
        if node.schedulable
        for gpu in node.gpus
        if is_usable(gpu, thresholds)
    }
    occupied: set[tuple[str, int]] = set()
    for workload in snapshot.workloads.values():
        if workload.allocation is not None:
            for replica in workload.allocation.replicas:
                occupied.update((replica.node, index) for index in replica.gpu_indices)
    for placement in decisions.bindings.values():
        for replica in placement:
            occupied.update((replica.node, index) for index in replica.gpu_indices)
    held = held_gpus(built, decisions)
    pending: dict[str, int] = {}
    for uid in decisions.waiting:
        waiting = snapshot.workloads.get(uid)
        if waiting is not None:
            pending[waiting.tenant] = pending.get(waiting.tenant, 0) + 1
    tenants = []
    for tenant in snapshot.tenants.values():
        holding = held.get(tenant.name, 0.0)
        tenants.append(
            {
                "namespace": tenant.name,
                "allocatedGPUs": round(holding),
                "borrowedGPUs": max(0, round(holding - tenant.guaranteed_gpus)),
                "credits": round(balances.get(tenant.name, tenant.credit_balance), 3),
                "pending": pending.get(tenant.name, 0),
            }
        )
    conditions: list[Any] = list(raw_status.get("conditions") or [])
    ready_message = f"{len(snapshot.nodes)} nodes, {len(healthy_gpus)}/{total} GPUs healthy"
    conditions = list(
        set_condition(
            conditions,
            type_="Ready",
            status=bool(healthy_gpus),
            reason="Scheduling" if healthy_gpus else "NoHealthyGPUs",
            message=ready_message,
            now=now,
        )
    )
    problems = problems_in_words(built)
    conditions = list(
        set_condition(
            conditions,
            type_="Degraded",
            status=bool(problems),
            reason=degraded_reason(built),
            message=summarise(problems, shown=DEGRADED_SHOWN),
            now=now,
        )
    )
    return {
        "observedGeneration": pool.generation,
        "nodes": len(snapshot.nodes),
        "gpus": {
            "total": total,
            "healthy": len(healthy_gpus),
            "allocated": len(occupied),
            "idle": len(healthy_gpus - occupied),
        },
        "clearingPricePerGPUHour": round(decisions.clearing_price_per_gpu_hour, 6),
        "tenants": tenants,
        "conditions": conditions,
    }


def pool_status_change(
    pool: PoolRecord, status: Mapping[str, Any], *, raw_status: Mapping[str, Any]
) -> Change | None:
    patch = minimal_patch(raw_status, status)
    if not patch:
        return None
    return Change(target=pool.ref, plural=names.POOL_PLURAL, status_patch=patch)
