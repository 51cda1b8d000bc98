"""The operator's Prometheus metrics (``gpupool_`` prefix, unit suffixes).

One :class:`OperatorMetrics` per process, on an injectable registry so tests
read values without a global state.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

CYCLE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GPU_STATES = ("total", "healthy", "allocated", "idle")


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
            "GPUs of a pool by state (total, healthy, allocated, idle).",
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
        self._pending_keys: dict[str, set[tuple[str, str]]] = {}

    def set_pending(self, pool: str, counts: Mapping[tuple[str, str], int]) -> None:
        """Replace a pool's pending gauges (label sets that emptied drop to 0)."""
        previous = self._pending_keys.get(pool, set())
        for tier, tenant in previous - set(counts):
            self.pending.labels(pool=pool, tier=tier, tenant=tenant).set(0)
        for (tier, tenant), count in counts.items():
            self.pending.labels(pool=pool, tier=tier, tenant=tenant).set(count)
        self._pending_keys[pool] = set(counts)

    def serve(self, port: int, *, address: str = "0.0.0.0") -> None:
        """Expose ``/metrics`` on ``port`` (a daemon thread)."""
        start_http_server(port, addr=address, registry=self.registry)
