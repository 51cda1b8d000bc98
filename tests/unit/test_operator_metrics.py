"""OperatorMetrics at its boundary: what each recording method leaves in a fresh registry."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gpupool.metrics import RESOURCES, TIERS, OperatorMetrics


def value(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_metrics_object_has_its_own_registry() -> None:
    one, two = OperatorMetrics(), OperatorMetrics()
    one.leader.set(1)
    assert value(one, "gpupool_leader") == 1.0
    assert value(two, "gpupool_leader") == 0.0
    shared = CollectorRegistry()
    assert OperatorMetrics(shared).registry is shared


def test_reconcile_errors_of_every_resource_are_exported_from_the_start() -> None:
    metrics = OperatorMetrics()
    for resource in RESOURCES:
        assert value(metrics, "gpupool_reconcile_errors_total", resource=resource) == 0.0


def test_counting_errors_counts_and_re_raises() -> None:
    metrics = OperatorMetrics()
    with metrics.counting_errors("pods"):
        pass
    with pytest.raises(KeyError), metrics.counting_errors("pods"):
        raise KeyError("boom")
    assert value(metrics, "gpupool_reconcile_errors_total", resource="pods") == 1.0
    assert value(metrics, "gpupool_reconcile_errors_total", resource="nodes") == 0.0


def test_gpus_by_state_derive_unhealthy() -> None:
    metrics = OperatorMetrics()
    metrics.set_gpus("p", {"total": 16, "healthy": 13, "allocated": 8, "idle": 5})
    assert value(metrics, "gpupool_gpus", pool="p", state="unhealthy") == 3.0
    assert value(metrics, "gpupool_gpus", pool="p", state="idle") == 5.0


def test_pending_label_sets_that_empty_drop_to_zero() -> None:
    metrics = OperatorMetrics()
    metrics.set_pending("p", {("high", "a"): 2, ("low", "b"): 1})
    metrics.set_pending("p", {("low", "b"): 3})
    assert value(metrics, "gpupool_pending_workloads", pool="p", tier="high", tenant="a") == 0.0
    assert value(metrics, "gpupool_pending_workloads", pool="p", tier="low", tenant="b") == 3.0


def test_tenants_that_leave_a_pool_lose_their_series() -> None:
    metrics = OperatorMetrics()
    metrics.set_tenants(
        "p", credits={"a": 5.0, "b": 1.0}, allocated={"a": 8, "b": 4}, borrowed={"b": 4}
    )
    assert value(metrics, "gpupool_tenant_borrowed_gpus", pool="p", tenant="a") == 0.0
    assert value(metrics, "gpupool_tenant_borrowed_gpus", pool="p", tenant="b") == 4.0
    metrics.set_tenants("p", credits={"a": 4.0}, allocated={"a": 8}, borrowed={})
    for name in ("credits", "allocated_gpus", "borrowed_gpus"):
        assert value(metrics, f"gpupool_tenant_{name}", pool="p", tenant="b") is None
    assert value(metrics, "gpupool_tenant_credits", pool="p", tenant="a") == 4.0


def test_node_info_follows_the_pool_nodes() -> None:
    metrics = OperatorMetrics()
    metrics.set_nodes("p", ["n0", "n1"])
    metrics.set_nodes("q", ["n2"])
    metrics.set_nodes("p", ["n1"])
    assert value(metrics, "gpupool_node_info", pool="p", node="n0") is None
    assert value(metrics, "gpupool_node_info", pool="p", node="n1") == 1.0
    assert value(metrics, "gpupool_node_info", pool="q", node="n2") == 1.0


def test_forget_pool_drops_its_gauges_but_keeps_counters_and_other_pools() -> None:
    metrics = OperatorMetrics()
    for pool in ("p", "q"):
        metrics.set_gpus(pool, {"total": 8, "healthy": 8, "allocated": 0, "idle": 8})
        metrics.set_pending(pool, {("normal", "a"): 1})
        metrics.set_tenants(pool, credits={"a": 1.0}, allocated={"a": 0}, borrowed={})
        metrics.set_nodes(pool, [f"{pool}-n0"])
        metrics.clearing_price.labels(pool=pool).set(0.5)
        metrics.decisions.labels(pool=pool, kind="bind").inc()
    metrics.forget_pool("p")
    assert value(metrics, "gpupool_gpus", pool="p", state="total") is None
    assert value(metrics, "gpupool_pending_workloads", pool="p", tier="normal", tenant="a") is None
    assert value(metrics, "gpupool_tenant_credits", pool="p", tenant="a") is None
    assert value(metrics, "gpupool_node_info", pool="p", node="p-n0") is None
    assert value(metrics, "gpupool_clearing_price_per_gpu_hour", pool="p") is None
    assert value(metrics, "gpupool_decisions_total", pool="p", kind="bind") == 1.0
    assert value(metrics, "gpupool_node_info", pool="q", node="q-n0") == 1.0
    metrics.forget_pool("p")  # twice is harmless
    metrics.forget_pools()
    assert value(metrics, "gpupool_node_info", pool="q", node="q-n0") is None
    assert value(metrics, "gpupool_gpus", pool="q", state="total") is None


def test_bind_latency_waits_for_every_placed_replica() -> None:
    metrics = OperatorMetrics()
    tracker = metrics.bind_latency_of("p")
    for tier in TIERS:  # exported at 0, so that the first wait counts in rate()
        assert value(metrics, "gpupool_bind_latency_seconds_count", pool="p", tier=tier) == 0.0
    bound = {"job": 1}
    tracker.placed("job", tier="high", created_at=100.0, replicas=2)
    tracker.check(bound.__getitem__, now=103.0, live={"job"})
    assert value(metrics, "gpupool_bind_latency_seconds_count", pool="p", tier="high") == 0.0
    assert tracker.waiting == {"job"}
    bound["job"] = 2
    tracker.check(bound.__getitem__, now=104.5, live={"job"})
    assert value(metrics, "gpupool_bind_latency_seconds_count", pool="p", tier="high") == 1.0
    assert value(metrics, "gpupool_bind_latency_seconds_sum", pool="p", tier="high") == 4.5
    # Placed again while it lives (an inference service back from a preemption): no.
    tracker.placed("job", tier="high", created_at=100.0, replicas=2)
    assert tracker.waiting == frozenset()


def test_bind_latency_forgets_workloads_that_are_gone() -> None:
    metrics = OperatorMetrics()
    tracker = metrics.bind_latency_of("p")
    tracker.placed("gone", tier="low", created_at=0.0, replicas=1)
    tracker.check(lambda uid: 0, now=1.0, live=set())
    assert tracker.waiting == frozenset()
    tracker.check(lambda uid: 1, now=2.0, live={"gone"})
    assert value(metrics, "gpupool_bind_latency_seconds_count", pool="p", tier="low") == 0.0


def test_exposition_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    metrics = OperatorMetrics()
    metrics.set_gpus("p", {"total": 8, "healthy": 7, "allocated": 4, "idle": 3})
    metrics.set_tenants("p", credits={"a": 1.0}, allocated={"a": 4}, borrowed={"a": 4})
    metrics.set_nodes("p", ["n0"])
    metrics.bind_latency_of("p").placed("w", tier="normal", created_at=0.0, replicas=1)
    text = generate_latest(metrics.registry).decode()
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
