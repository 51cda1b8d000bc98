from __future__ import annotations

from gpupool.scheduling.config import HealthThresholds
from gpupool.telemetry.metrics import AgentMetrics

from .builders import node, with_gpu


def sample(metrics: AgentMetrics, name: str, gpu: int, **extra: str) -> float | None:
    labels = {
        "node": "node-a",
        "gpu": str(gpu),
        "uuid": f"GPU-test-{gpu}",
        "model": "NVIDIA H100 80GB HBM3",
        **extra,
    }
    return metrics.registry.get_sample_value(name, labels)


def test_gpu_series_in_units() -> None:
    metrics = AgentMetrics(thresholds=HealthThresholds())
    report = with_gpu(
        node(gpus=2), 1, sm_utilization_pct=97.0, memory_used_mib=1024, temperature_c=71.0
    )
    metrics.observe(report)
    assert sample(metrics, "gpupool_gpu_utilization_ratio", 1) == 0.97
    assert sample(metrics, "gpupool_gpu_memory_used_bytes", 1) == 1024 * 1024 * 1024
    assert sample(metrics, "gpupool_gpu_temperature_celsius", 1) == 71.0
    assert sample(metrics, "gpupool_gpu_power_watts", 1) == 70.0
    assert sample(metrics, "gpupool_gpu_healthy", 1) == 1.0


def test_xids_count_and_unhealthy_gpu_reads_zero() -> None:
    metrics = AgentMetrics(thresholds=HealthThresholds())
    metrics.observe(with_gpu(node(gpus=1), 0, xid_events=(79, 79)))
    metrics.observe(with_gpu(node(gpus=1), 0, xid_events=(79,), xid_history=(79,)))
    assert sample(metrics, "gpupool_gpu_xid_errors_total", 0, xid="79") == 3.0
    assert sample(metrics, "gpupool_gpu_healthy", 0) == 0.0


def test_unknown_values_have_no_sample_and_nodes_can_be_forgotten() -> None:
    metrics = AgentMetrics(thresholds=HealthThresholds())
    metrics.observe(node(gpus=1))
    metrics.observe(with_gpu(node(gpus=1), 0, lost=True, temperature_c=None, power_w=None))
    assert sample(metrics, "gpupool_gpu_temperature_celsius", 0) is None
    assert sample(metrics, "gpupool_gpu_healthy", 0) == 0.0
    metrics.forget_node("node-a")
    assert sample(metrics, "gpupool_gpu_healthy", 0) is None
