"""One scheduling cycle of one pool: the only place decisions turn into writes.

Shape (STYLE.md): lifecycle pass (pods -> status) -> snapshot -> decide (the
pure core) -> assume in cache -> write -> on a failed write forget (the next
cycle decides again). Runs on a worker thread; everything it reads comes from
the cache, everything it writes goes through the actuator.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gpupool.loop.actions import Change
from gpupool.loop.actuator import Actuator
from gpupool.loop.context import CycleContext
from gpupool.loop.job_lifecycle import job_lifecycle
from gpupool.loop.ledger import CreditLedger, WorkloadCharge
from gpupool.loop.plan import plan_changes
from gpupool.loop.pool_status import pool_status, pool_status_change
from gpupool.loop.service_lifecycle import service_lifecycle
from gpupool.metrics import OperatorMetrics
from gpupool.scheduling.config import PoolConfig
from gpupool.scheduling.cycle import run_cycle
from gpupool.scheduling.decisions import Decisions
from gpupool.scheduling.gc_pause import paused_gc
from gpupool.scheduling.snapshot import Snapshot
from gpupool.state.cache import ClusterCache, PoolView
from gpupool.state.snapshot import BuiltSnapshot, SnapshotSettings, build_snapshot, tenants_of

logger = logging.getLogger(__name__)

Decide = Callable[[Snapshot, PoolConfig], Decisions]


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleReport:
    pool: str
    now: float
    bound: int
    preempted: int
    waiting: int
    lifecycle_changes: int
    writes_failed: int
    duration_s: float
    decide_s: float
    clearing_price_per_gpu_hour: float


class PoolScheduler:
    """Runs cycles for one pool; keeps the pool's credit books between them."""

    def __init__(
        self,
        *,
        pool: str,
        cache: ClusterCache,
        actuator: Actuator,
        clock: Callable[[], float],
        identity: str,
        settings: SnapshotSettings | None = None,
        metrics: OperatorMetrics | None = None,
        decide: Decide = run_cycle,
        cosmetic_refresh_s: float = 10.0,
        metrics_port: int | None = None,
    ) -> None:
        self.pool = pool
        self._cache = cache
        self._actuator = actuator
        self._clock = clock
        self._identity = identity
        self._settings = settings or SnapshotSettings()
        self._metrics = metrics
        self._decide = decide
        self._cosmetic_refresh_s = cosmetic_refresh_s
        self._last_cosmetic: dict[str, float] = {}
        self._metrics_port = metrics_port
        self._bind_latency = metrics.bind_latency_of(pool) if metrics is not None else None
        self.ledger = CreditLedger()

    def _context(self, view: PoolView, now: float) -> CycleContext:
        spec = view.pool.spec
        extra = {} if self._metrics_port is None else {"metrics_port": self._metrics_port}
        return CycleContext(
            pool=view.pool.name,
            now=now,
            grace_period_s=spec.preemption.grace_period_seconds,
            pool_nodes=frozenset(node.name for node in view.nodes),
            reporting_instance=self._identity,
            gpu_resource_name=spec.gpu_resource_name,
            **extra,
        )

    def run_once(self) -> CycleReport | None:
        """One full cycle; ``None`` when the pool is not (or no longer) in the cache."""
        started = time.perf_counter()
        now = self._clock()
        view = self._cache.pool_view(self.pool)
        if view is None:
            return None
        ctx = self._context(view, now)

        lifecycle: list[Change] = []
        for job in view.jobs:
            change = job_lifecycle(
                job,
                view.pods_of(job.uid),
                ctx,
                reported_checkpoint=view.reported_checkpoint(job.uid),
            )
            if change is not None:
                lifecycle.append(change)
        for service in view.services:
            change = service_lifecycle(service, view.pods_of(service.uid), ctx)
            if change is not None:
                lifecycle.append(change)
        first = self._actuator.apply(lifecycle)

        view = self._cache.pool_view(self.pool)
        if view is None:
            return None
        balances = self.ledger.settle(
            now=now,
            tenants=tenants_of(view.pool.spec, self.ledger.balances(view.pool.tenant_credits)),
        )
        built = build_snapshot(view, now=now, balances=balances, settings=self._settings)
        decide_started = time.perf_counter()
        with paused_gc():  # the collector's passes were ~40% of a large cycle
            decisions = self._decide(built.snapshot, built.config)
        decide_s = time.perf_counter() - decide_started

        self.ledger.charge_next_interval(_charges(built, decisions))
        spent = {
            job.uid: self.ledger.spent(job.uid, persisted=job.status.credits_spent)
            for job in view.jobs
        }
        self.ledger.forget({job.uid for job in view.jobs} | {s.uid for s in view.services})
        changes = self._throttle(
            plan_changes(view, built, decisions, ctx, credits_spent=spent), now
        )
        status = pool_status(
            view.pool,
            built,
            decisions,
            balances=balances,
            now=now,
            raw_status=view.pool.raw_status,
        )
        pool_change = pool_status_change(view.pool, status, raw_status=view.pool.raw_status)
        if pool_change is not None:
            changes.append(pool_change)
        second = self._actuator.apply(changes)

        duration = time.perf_counter() - started
        report = CycleReport(
            pool=self.pool,
            now=now,
            bound=len(decisions.bindings),
            preempted=len(decisions.preemptions),
            waiting=len(decisions.waiting),
            lifecycle_changes=len(lifecycle),
            writes_failed=first.failed + second.failed,
            duration_s=duration,
            decide_s=decide_s,
            clearing_price_per_gpu_hour=decisions.clearing_price_per_gpu_hour,
        )
        self._observe(report, built, decisions, status, balances, nodes=ctx.pool_nodes)
        return report

    def _throttle(self, changes: list[Change], now: float) -> list[Change]:
        """Postpone cosmetic updates of an object written less than a moment ago."""
        kept: list[Change] = []
        for change in changes:
            uid = change.target.uid
            if change.urgent or change.writes or change.events:
                kept.append(change)
                self._last_cosmetic[uid] = now
                continue
            last = self._last_cosmetic.get(uid)
            if last is not None and now - last < self._cosmetic_refresh_s:
                continue
            self._last_cosmetic[uid] = now
            kept.append(change)
        if len(self._last_cosmetic) > 4 * max(len(changes), 1000):
            horizon = now - self._cosmetic_refresh_s
            self._last_cosmetic = {u: t for u, t in self._last_cosmetic.items() if t >= horizon}
        return kept

    def _observe(
        self,
        report: CycleReport,
        built: BuiltSnapshot,
        decisions: Decisions,
        status: Mapping[str, Any],
        balances: Mapping[str, float],
        *,
        nodes: frozenset[str],
    ) -> None:
        if report.bound or report.preempted or report.lifecycle_changes:
            logger.info(
                "pool %s: bound %d, preempted %d, waiting %d, lifecycle %d, price %.3g (%.0f ms)",
                self.pool,
                report.bound,
                report.preempted,
                report.waiting,
                report.lifecycle_changes,
                report.clearing_price_per_gpu_hour,
                report.duration_s * 1000,
            )
        metrics = self._metrics
        if metrics is None:
            return
        metrics.cycle_duration.labels(pool=self.pool).observe(report.duration_s)
        metrics.decide_duration.labels(pool=self.pool).observe(report.decide_s)
        metrics.decisions.labels(pool=self.pool, kind="bind").inc(report.bound)
        metrics.decisions.labels(pool=self.pool, kind="preempt").inc(report.preempted)
        for preemption in decisions.preemptions.values():
            metrics.preemptions.labels(pool=self.pool, cause=str(preemption.cause)).inc()
        gpus = status.get("gpus")
        if isinstance(gpus, dict):
            metrics.set_gpus(self.pool, gpus)
        metrics.clearing_price.labels(pool=self.pool).set(report.clearing_price_per_gpu_hour)
        tenants = [t for t in status.get("tenants") or () if isinstance(t, dict)]
        metrics.set_tenants(
            self.pool,
            credits=balances,
            allocated={t["namespace"]: t["allocatedGPUs"] for t in tenants},
            borrowed={t["namespace"]: t["borrowedGPUs"] for t in tenants},
        )
        metrics.set_nodes(self.pool, nodes)
        self._observe_binds(built, decisions)
        pending: dict[tuple[str, str], int] = {}
        for uid in decisions.waiting:
            workload = built.snapshot.workloads.get(uid)
            if workload is not None:
                key = (workload.tier.label, str(workload.tenant))
                pending[key] = pending.get(key, 0) + 1
        metrics.set_pending(self.pool, pending)

    def _observe_binds(self, built: BuiltSnapshot, decisions: Decisions) -> None:
        """Create-to-bound latency of first launches, once all their pods are bound."""
        tracker = self._bind_latency
        if tracker is None:
            return
        workloads = built.snapshot.workloads
        for uid, placement in decisions.bindings.items():
            workload = workloads.get(uid)
            if (
                workload is None
                or uid in built.scale_requests
                or workload.restarts
                or workload.preemptions
            ):
                continue  # a scale-up or a relaunch: not a create-to-bound wait
            tracker.placed(
                uid,
                tier=workload.tier.label,
                created_at=workload.submitted_at,
                replicas=len(placement),
            )
        tracker.check(self._bound_pods, now=self._clock(), live=workloads.keys())

    def _bound_pods(self, uid: str) -> int:
        return sum(1 for pod in self._cache.pods_of(uid) if pod.node and not pod.deleting)


def _charges(built: BuiltSnapshot, decisions: Decisions) -> tuple[WorkloadCharge, ...]:
    """What each workload holding GPUs pays until the next cycle."""
    charges = []
    workloads = built.snapshot.workloads
    for uid, price in decisions.prices.items():
        workload = workloads.get(uid)
        if workload is None or price <= 0 or uid in decisions.preemptions:
            continue
        if workload.allocation is not None and workload.preempted_at is None:
            gpus = workload.allocated_gpus()
        elif uid in decisions.bindings:
            gpus = len(decisions.bindings[uid]) * workload.gpus_per_replica_units
        else:
            continue
        owner = built.scale_requests.get(uid, uid)
        charges.append(
            WorkloadCharge(uid=owner, tenant=workload.tenant, price_per_gpu_hour=price, gpus=gpus)
        )
    return tuple(charges)
