"""Prometheus metrics of the node agent: one series per GPU, ``gpupool_gpu_`` names with units.

Per GPU (labels ``node``, ``gpu``, ``uuid``, ``model``):

=======================================  =============================================
``gpupool_gpu_utilization_ratio``        SM utilization, 0-1
``gpupool_gpu_memory_used_bytes``        device memory in use
``gpupool_gpu_memory_free_bytes``        device memory free
``gpupool_gpu_temperature_celsius``      GPU core temperature
``gpupool_gpu_power_watts``              board power draw
``gpupool_gpu_healthy``                  1 healthy, 0 not (agent's thresholds)
``gpupool_gpu_xid_errors_total``         XID events, extra label ``xid``
=======================================  =============================================

A value the GPU cannot report (``None``, a lost GPU) has no sample rather than
a fake zero. Per agent: ``gpupool_agent_read_seconds`` (time of one read of all
its GPUs) and ``gpupool_agent_api_writes_total`` (label ``kind``: urgent /
change / heartbeat, ``result``: ok / error).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gpupool.scheduling.config import HealthThresholds
from gpupool.telemetry.health import gpu_health
from gpupool.telemetry.model import GPUTelemetry, NodeTelemetry

GPU_LABELS = ("node", "gpu", "uuid", "model")
MIB_BYTES = 1024 * 1024


class AgentMetrics:
    """The agent's metrics in their own registry (serve it with ``start_http_server``)."""

    def __init__(self, *, thresholds: HealthThresholds, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self._thresholds = thresholds
        r = self.registry
        self.utilization = Gauge(
            "gpupool_gpu_utilization_ratio", "SM utilization (0-1).", GPU_LABELS, registry=r
        )
        self.memory_used = Gauge(
            "gpupool_gpu_memory_used_bytes", "GPU memory in use.", GPU_LABELS, registry=r
        )
        self.memory_free = Gauge(
            "gpupool_gpu_memory_free_bytes", "GPU memory free.", GPU_LABELS, registry=r
        )
        self.temperature = Gauge(
            "gpupool_gpu_temperature_celsius", "GPU temperature.", GPU_LABELS, registry=r
        )
        self.power = Gauge("gpupool_gpu_power_watts", "Board power draw.", GPU_LABELS, registry=r)
        self.healthy = Gauge(
            "gpupool_gpu_healthy",
            "1 when the GPU passes the agent's health thresholds, else 0.",
            GPU_LABELS,
            registry=r,
        )
        self.xid_errors = Counter(
            "gpupool_gpu_xid_errors_total",
            "XID error events reported by the driver.",
            (*GPU_LABELS, "xid"),
            registry=r,
        )
        self.read_seconds = Histogram(
            "gpupool_agent_read_seconds",
            "Wall time of one telemetry read of all GPUs this agent covers.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.api_writes = Counter(
            "gpupool_agent_api_writes_total",
            "Telemetry writes to the API server.",
            ("kind", "result"),
            registry=r,
        )
        self._labels: dict[tuple[str, int], tuple[str, str, str, str]] = {}
        self._children: dict[tuple[str, str, str, str], dict[str, Gauge]] = {}
        """Per GPU label set, the gauge children already created (``labels()`` is slow)."""

    def observe(self, telemetry: NodeTelemetry) -> None:
        """Set every GPU's series from one node report."""
        for gpu in telemetry.gpus:
            labels = (telemetry.node, str(gpu.index), gpu.uuid, gpu.model)
            key = (telemetry.node, gpu.index)
            previous = self._labels.get(key)
            if previous is not None and previous != labels:
                self._remove(previous)
            self._labels[key] = labels
            self._observe_gpu(labels, gpu)

    def forget_node(self, node: str) -> None:
        """Drop a node's series (a kwok node that was deleted)."""
        for key in [key for key in self._labels if key[0] == node]:
            self._remove(self._labels.pop(key))
        self.xid_errors.remove_by_labels({"node": node})

    def _observe_gpu(self, labels: tuple[str, str, str, str], gpu: GPUTelemetry) -> None:
        children = self._children.setdefault(labels, {})
        for xid in gpu.xid_events:
            self.xid_errors.labels(*labels, str(xid)).inc()
        utilization = None if gpu.sm_utilization_pct is None else gpu.sm_utilization_pct / 100.0
        used = None if gpu.memory_used_mib is None else float(gpu.memory_used_mib * MIB_BYTES)
        free = None if gpu.memory_free_mib is None else float(gpu.memory_free_mib * MIB_BYTES)
        healthy = 1.0 if gpu_health(gpu, self._thresholds).healthy else 0.0
        for name, gauge, value in (
            ("healthy", self.healthy, healthy),
            ("utilization", self.utilization, utilization),
            ("memory_used", self.memory_used, used),
            ("memory_free", self.memory_free, free),
            ("temperature", self.temperature, gpu.temperature_c),
            ("power", self.power, gpu.power_w),
        ):
            if value is None:
                if children.pop(name, None) is not None:
                    gauge.remove(*labels)
                continue
            child = children.get(name)
            if child is None:
                child = children[name] = gauge.labels(*labels)
            child.set(value)

    def _remove(self, labels: tuple[str, str, str, str]) -> None:
        self._children.pop(labels, None)
        for gauge in (
            self.utilization,
            self.memory_used,
            self.memory_free,
            self.temperature,
            self.power,
            self.healthy,
        ):
            gauge.remove(*labels)
