"""Fixture builders for scheduling tests: ``job("a").gpus(8).replicas(2).priority("high")``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from gpupool.scheduling import (
    GPU,
    Allocation,
    Decisions,
    GpuShare,
    Node,
    NodeName,
    ReplicaPlacement,
    Snapshot,
    Tenant,
    TenantName,
    Tier,
    Workload,
    WorkloadKind,
    WorkloadUid,
)
from gpupool.scheduling.auction import Bidder
from gpupool.scheduling.queue_order import PendingTable, order_queue, pending_facts


class JobBuilder:
    def __init__(self, name: str) -> None:
        self._w = Workload(uid=WorkloadUid(name), name=name, tenant=TenantName("team-a"))

    def gpus(self, count: int) -> JobBuilder:
        self._w = replace(self._w, gpus_per_replica=count)
        return self

    def replicas(self, count: int) -> JobBuilder:
        self._w = replace(self._w, replicas=count)
        return self

    def elastic(self, min_replicas: int) -> JobBuilder:
        self._w = replace(self._w, min_replicas=min_replicas)
        return self

    def priority(self, tier: str) -> JobBuilder:
        self._w = replace(self._w, tier=Tier.parse(tier))
        return self

    def tenant(self, name: str) -> JobBuilder:
        self._w = replace(self._w, tenant=TenantName(name))
        return self

    def bid(self, per_gpu_hour: float | None) -> JobBuilder:
        self._w = replace(self._w, bid_per_gpu_hour=per_gpu_hour)
        return self

    def inference(self) -> JobBuilder:
        self._w = replace(self._w, kind=WorkloadKind.INFERENCE)
        return self

    def share(self, fraction: float, memory_mib: int) -> JobBuilder:
        self._w = replace(
            self._w,
            kind=WorkloadKind.INFERENCE,
            gpus_per_replica=0,
            gpu_share=GpuShare(fraction=fraction, memory_mib=memory_mib),
        )
        return self

    def submitted(self, at: float) -> JobBuilder:
        self._w = replace(self._w, submitted_at=at)
        return self

    def attained(self, seconds: float) -> JobBuilder:
        self._w = replace(self._w, attained_service_s=seconds)
        return self

    def checkpointed(self, at: float) -> JobBuilder:
        self._w = replace(self._w, last_checkpoint_at=at)
        return self

    def running_on(self, *replicas: tuple[str, Sequence[int]], since: float = 0.0) -> JobBuilder:
        placement = tuple(
            ReplicaPlacement(node=NodeName(node), gpu_indices=tuple(gpus))
            for node, gpus in replicas
        )
        self._w = replace(
            self._w,
            replicas=len(placement) if self._w.min_replicas is None else self._w.replicas,
            allocation=Allocation(replicas=placement, started_at=since),
        )
        return self

    def preempted(self, at: float) -> JobBuilder:
        self._w = replace(self._w, preempted_at=at)
        return self

    def build(self) -> Workload:
        return self._w


def job(name: str) -> JobBuilder:
    return JobBuilder(name)


def node(
    name: str,
    gpus: int = 8,
    *,
    domains: int = 1,
    memory_mib: int = 80_000,
    unhealthy: Iterable[int] = (),
    schedulable: bool = True,
) -> Node:
    bad = set(unhealthy)
    per_domain = max(1, gpus // domains)
    return Node(
        name=NodeName(name),
        schedulable=schedulable,
        gpus=tuple(
            GPU(
                index=i,
                memory_total_mib=memory_mib,
                memory_free_mib=memory_mib,
                healthy=i not in bad,
                nvlink_domain=i // per_domain,
            )
            for i in range(gpus)
        ),
    )


def cluster(nodes: int = 2, gpus: int = 8, *, domains: int = 1) -> tuple[Node, ...]:
    return tuple(node(f"n{i}", gpus, domains=domains) for i in range(nodes))


def tenant(
    name: str,
    *,
    guaranteed: int = 0,
    max_gpus: int | None = None,
    balance: float = 1e6,
    per_hour: float = 100.0,
    weight: float = 1.0,
) -> Tenant:
    return Tenant(
        name=TenantName(name),
        weight=weight,
        guaranteed_gpus=guaranteed,
        max_gpus=max_gpus,
        credits_per_hour=per_hour,
        credits_max=max(balance, 1e6),
        credit_balance=balance,
    )


def snapshot(
    *workloads: Workload | JobBuilder,
    nodes: Sequence[Node] | None = None,
    tenants: Iterable[Tenant] = (),
    now: float = 1000.0,
) -> Snapshot:
    built = [w.build() if isinstance(w, JobBuilder) else w for w in workloads]
    by_name = {t.name: t for t in tenants}
    for w in built:
        by_name.setdefault(w.tenant, tenant(w.tenant))
    return Snapshot(
        now=now,
        nodes=tuple(nodes) if nodes is not None else cluster(),
        tenants=by_name,
        workloads={w.uid: w for w in built},
    )


def every_decision(decisions: Decisions) -> tuple[object, ...]:
    """Every decision, in iteration order, lazy mappings included (to compare two paths
    decision by decision)."""
    return (
        list(decisions.bindings.items()),
        list(decisions.preemptions.items()),
        decisions.clearing_price_per_gpu_hour,
        list(decisions.prices.items()),
        list(decisions.bids.items()),
        [(uid, tuple(reason), reason.message) for uid, reason in decisions.waiting.items()],
        list(decisions.queue_positions.items()),
    )


def fast_pending_bid(
    bidder: Bidder, workload: Workload, tenant: Tenant, gpus: float, *, now: float
) -> float:
    """A pending workload's bid by the cycle's column path (:func:`order_queue` over a queue
    of this workload alone, capped by credits for ``gpus``), to compare with
    :meth:`Bidder.effective` (``bidder`` made for ``now``)."""
    table = PendingTable()
    facts = list(pending_facts(workload, bidder, 0.0))
    facts[8] = bidder.gpu_hours(gpus)  # the credit cap's GPU-hours for these GPUs
    row = table.add(tuple(facts))[15]
    budgets = {workload.tenant: bidder.budget(tenant)}
    queue = order_queue(table, [row], now=now, bidder=bidder, budgets=budgets)
    assert queue.workloads == [workload]
    return queue.bids[0]
