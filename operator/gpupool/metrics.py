"""The operator's Prometheus metrics (``gpupool_`` prefix, unit suffixes).

One :class:`OperatorMetrics` per process, on an injectable registry so tests
read values without a global state.

=========================================  ========================  ==========================
metric                                     labels                    recorded by
=========================================  ========================  ==========================
``gpupool_cycle_duration_seconds``         pool                      each scheduling cycle
``gpupool_decide_duration_seconds``        pool                      each scheduling cycle
``gpupool_decisions_total``                pool, kind                each scheduling cycle
``gpupool_preemptions_total``              pool, cause               each scheduling cycle
``gpupool_gpus``                           pool, state               each scheduling cycle
``gpupool_pending_workloads``              pool, tier, tenant        each scheduling cycle
``gpupool_clearing_price_per_gpu_hour``    pool                      each scheduling cycle
``gpupool_tenant_credits``                 pool, tenant              each scheduling cycle
``gpupool_tenant_allocated_gpus``          pool, tenant              each scheduling cycle
``gpupool_tenant_borrowed_gpus``           pool, tenant              each scheduling cycle
``gpupool_node_info``                      pool, node                each scheduling cycle
``gpupool_bind_latency_seconds``           pool, tier                when a first launch is bound
``gpupool_reconcile_errors_total``         resource                  failed cycles, handlers, writes
``gpupool_api_writes_total``               verb, outcome             the actuator
``gpupool_leader``                                                   the leader loop
=========================================  ========================  ==========================

Pool-scoped gauges describe what the replica scheduling the pool last saw; a
replica that stops scheduling a pool (lease lost, pool deleted) drops them
(:meth:`OperatorMetrics.forget_pool`), so that ``gpupool_node_info`` names each
node once and GPU series can be joined to their pool with
``* on(node) group_left(pool) gpupool_node_info``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from gpupool.scheduling.model import Tier

CYCLE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BIND_BUCKETS = (
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
    21600.0, 86400.0,
)  # fmt: skip
"""Creation timestamps have a resolution of one second: finer buckets would mean nothing."""
GPU_STATES = ("total", "healthy", "unhealthy", "allocated", "idle")
RESOURCES = ("gpupools", "trainingjobs", "inferenceservices", "pods", "services", "nodes")
"""Values of ``resource`` on ``gpupool_reconcile_errors_total`` (all exported from the start)."""
TIERS = tuple(tier.label for tier in Tier)


@dataclass(frozen=True, slots=True)
class _Launch:
    tier: str
    created_at: float
    replicas: int


class BindLatency:
    """Create-to-bound latency of one pool's workloads (``gpupool_bind_latency_seconds``).

    A workload counts once, at its first launch: from its ``creationTimestamp`` until
    every replica the scheduler placed has a pod bound to a node. A launch whose pods
    are not all bound in the cycle that placed it (a failed write the next lifecycle
    pass repairs) is observed in the cycle that finds them bound.
    """

    def __init__(self, histogram: Histogram, pool: str) -> None:
        self._histogram = histogram
        self._pool = pool
        for tier in TIERS:  # exported at 0: the first wait counts in rate() and increase()
            histogram.labels(pool=pool, tier=tier)
        self._waiting: dict[str, _Launch] = {}
        self._observed: set[str] = set()

    def placed(self, uid: str, *, tier: str, created_at: float, replicas: int) -> None:
        """The scheduler placed ``replicas`` replicas of a workload's first launch."""
        if uid not in self._observed and replicas > 0:
            self._waiting.setdefault(uid, _Launch(tier, created_at, replicas))

    def check(self, bound_pods: Callable[[str], int], *, now: float, live: Collection[str]) -> None:
        """Observe the launches whose pods are all bound; forget workloads not ``live``."""
        self._observed = {uid for uid in self._observed if uid in live}
        for uid, launch in list(self._waiting.items()):
            if uid not in live:
                del self._waiting[uid]
            elif bound_pods(uid) >= launch.replicas:
                del self._waiting[uid]
                self._observed.add(uid)
                latency = max(0.0, now - launch.created_at)
                self._histogram.labels(pool=self._pool, tier=launch.tier).observe(latency)

    @property
    def waiting(self) -> frozenset[str]:
        return frozenset(self._waiting)


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.cycle_duration = Histogram(
            "gpupool_cycle_duration_seconds",
            "Wall time of one scheduling cycle of a pool (snapshot, decide, write).",
            ["pool"],
            buckets=CYCLE_BUCKETS,
            registry=self.registry,
        )
        self.decide_duration = Histogram(
            "gpupool_decide_duration_seconds",
            "Time the scheduling core (run_cycle) took within a cycle.",
            ["pool"],
            buckets=CYCLE_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "gpupool_decisions_total",
            "Scheduling decisions carried out, by kind (bind, preempt).",
            ["pool", "kind"],
            registry=self.registry,
        )
        self.preemptions = Counter(
            "gpupool_preemptions_total",
            "Workloads preempted, by cause.",
            ["pool", "cause"],
            registry=self.registry,
        )
        self.gpus = Gauge(
            "gpupool_gpus",
            "GPUs of a pool by state: total, healthy (schedulable and within the health "
            "thresholds), unhealthy (total - healthy), allocated, idle (healthy - allocated).",
            ["pool", "state"],
            registry=self.registry,
        )
        self.pending = Gauge(
            "gpupool_pending_workloads",
            "Workloads waiting for GPUs, by tier and tenant.",
            ["pool", "tier", "tenant"],
            registry=self.registry,
        )
        self.clearing_price = Gauge(
            "gpupool_clearing_price_per_gpu_hour",
            "Clearing price of the pool's last auction, in credits per GPU-hour.",
            ["pool"],
            registry=self.registry,
        )
        self.tenant_credits = Gauge(
            "gpupool_tenant_credits",
            "Credit balance of a tenant in a pool.",
            ["pool", "tenant"],
            registry=self.registry,
        )
        self.tenant_allocated = Gauge(
            "gpupool_tenant_allocated_gpus",
            "GPUs a tenant's workloads hold in a pool (after the cycle's bindings).",
            ["pool", "tenant"],
            registry=self.registry,
        )
        self.tenant_borrowed = Gauge(
            "gpupool_tenant_borrowed_gpus",
            "GPUs a tenant holds in a pool beyond its guaranteed GPUs.",
            ["pool", "tenant"],
            registry=self.registry,
        )
        self.node_info = Gauge(
            "gpupool_node_info",
            "1 for each node of a pool (join per-GPU series to their pool on `node`).",
            ["pool", "node"],
            registry=self.registry,
        )
        self.bind_latency = Histogram(
            "gpupool_bind_latency_seconds",
            "Time from a workload's creation until all pods of its first launch were bound "
            "to nodes (queueing included; creationTimestamp has a 1 s resolution).",
            ["pool", "tier"],
            buckets=BIND_BUCKETS,
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "gpupool_reconcile_errors_total",
            "Failures while reconciling, by resource: scheduling cycles that raised "
            "(gpupools), event handlers that raised, API writes that failed.",
            ["resource"],
            registry=self.registry,
        )
        for resource in RESOURCES:
            self.reconcile_errors.labels(resource=resource)
        self.api_writes = Counter(
            "gpupool_api_writes_total",
            "Writes to the Kubernetes API by the actuator, by verb and outcome.",
            ["verb", "outcome"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "gpupool_leader",
            "1 while this replica holds the scheduling lease.",
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._pending_keys: dict[str, set[tuple[str, str]]] = {}
        self._tenant_keys: dict[str, set[str]] = {}
        self._node_keys: dict[str, set[str]] = {}
        self._gpu_states: dict[str, set[str]] = {}

    def bind_latency_of(self, pool: str) -> BindLatency:
        """A tracker of one pool's create-to-bound latencies (one per scheduling loop)."""
        return BindLatency(self.bind_latency, pool)

    def set_gpus(self, pool: str, counts: Mapping[str, int]) -> None:
        """A pool's GPUs by state (``unhealthy`` derived when absent)."""
        values = dict(counts)
        if "unhealthy" not in values and "total" in values and "healthy" in values:
            values["unhealthy"] = max(0, values["total"] - values["healthy"])
        with self._lock:
            for state, count in values.items():
                self.gpus.labels(pool=pool, state=state).set(count)
            self._gpu_states.setdefault(pool, set()).update(values)

    def set_pending(self, pool: str, counts: Mapping[tuple[str, str], int]) -> None:
        """Replace a pool's pending gauges (label sets that emptied drop to 0)."""
        with self._lock:
            previous = self._pending_keys.get(pool, set())
            for tier, tenant in previous - set(counts):
                self.pending.labels(pool=pool, tier=tier, tenant=tenant).set(0)
            for (tier, tenant), count in counts.items():
                self.pending.labels(pool=pool, tier=tier, tenant=tenant).set(count)
            self._pending_keys[pool] = previous | set(counts)

    def set_tenants(
        self,
        pool: str,
        *,
        credits: Mapping[str, float],
        allocated: Mapping[str, float],
        borrowed: Mapping[str, float],
    ) -> None:
        """A pool's tenant gauges; tenants no longer in the pool lose their series."""
        tenants = set(credits) | set(allocated) | set(borrowed)
        with self._lock:
            for gone in self._tenant_keys.get(pool, set()) - tenants:
                for gauge in (self.tenant_credits, self.tenant_allocated, self.tenant_borrowed):
                    _remove(gauge, pool, gone)
            for tenant in tenants:
                if tenant in credits:
                    self.tenant_credits.labels(pool=pool, tenant=tenant).set(credits[tenant])
                self.tenant_allocated.labels(pool=pool, tenant=tenant).set(allocated.get(tenant, 0))
                self.tenant_borrowed.labels(pool=pool, tenant=tenant).set(borrowed.get(tenant, 0))
            self._tenant_keys[pool] = tenants

    def set_nodes(self, pool: str, nodes: Collection[str]) -> None:
        """``gpupool_node_info`` of a pool's nodes; nodes that left lose their series."""
        current = set(nodes)
        with self._lock:
            for gone in self._node_keys.get(pool, set()) - current:
                _remove(self.node_info, pool, gone)
            for node in current - self._node_keys.get(pool, set()):
                self.node_info.labels(pool=pool, node=node).set(1)
            self._node_keys[pool] = current

    def forget_pool(self, pool: str) -> None:
        """Drop a pool's gauges (this replica no longer schedules it)."""
        with self._lock:
            for state in self._gpu_states.pop(pool, set()):
                _remove(self.gpus, pool, state)
            for tier, tenant in self._pending_keys.pop(pool, set()):
                _remove(self.pending, pool, tier, tenant)
            for tenant in self._tenant_keys.pop(pool, set()):
                for gauge in (self.tenant_credits, self.tenant_allocated, self.tenant_borrowed):
                    _remove(gauge, pool, tenant)
            for node in self._node_keys.pop(pool, set()):
                _remove(self.node_info, pool, node)
            _remove(self.clearing_price, pool)

    def forget_pools(self) -> None:
        """Drop every pool's gauges (this replica lost the scheduling lease)."""
        with self._lock:
            pools = (
                set(self._gpu_states) | set(self._pending_keys) | set(self._tenant_keys)
                | set(self._node_keys)
            )  # fmt: skip
        for pool in pools:
            self.forget_pool(pool)

    @contextmanager
    def counting_errors(self, resource: str) -> Iterator[None]:
        """Count an exception escaping the block as a reconcile error (and re-raise it)."""
        try:
            yield
        except Exception:
            self.reconcile_errors.labels(resource=resource).inc()
            raise

    def serve(self, port: int, *, address: str = "0.0.0.0") -> None:
        """Expose ``/metrics`` on ``port`` (a daemon thread)."""
        start_http_server(port, addr=address, registry=self.registry)


def _remove(metric: Gauge, *labels: str) -> None:
    with suppress(KeyError):  # never set
        metric.remove(*labels)
