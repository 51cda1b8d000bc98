from __future__ import annotations

import pytest

from gpupool.scheduling.config import HealthThresholds
from gpupool.telemetry.health import GPUHealth, assess_node, gpu_health, is_stale

from .builders import gpu, node, with_gpu

STRICT = HealthThresholds(max_temperature_c=80, evict_on_xid=frozenset({79}))


@pytest.mark.parametrize(
    ("fields", "healthy", "reason_part"),
    [
        ({}, True, "ok"),
        ({"lost": True}, False, "lost"),
        ({"xid_events": (79,)}, False, "XID 79 (GPU has fallen off the bus)"),
        ({"xid_history": (79,)}, False, "XID 79"),
        ({"xid_events": (13,)}, True, "ok"),  # not in the evict list
        ({"ecc_volatile_uncorrected": 1}, False, "1 uncorrected ECC errors > 0 allowed"),
        ({"ecc_volatile_corrected": 500}, True, "ok"),
        ({"temperature_c": 81.0}, False, "temperature 81C > 80C"),
        ({"temperature_c": 80.0}, True, "ok"),  # at the limit is still fine
        ({"temperature_c": None, "ecc_volatile_uncorrected": None}, True, "ok"),
        # order: lost beats xid beats ecc beats temperature
        ({"lost": True, "xid_events": (79,)}, False, "lost"),
        ({"temperature_c": 99.0, "ecc_volatile_uncorrected": 3}, False, "ECC"),
    ],
)
def test_gpu_health_table(fields: dict[str, object], healthy: bool, reason_part: str) -> None:
    verdict = gpu_health(gpu(0, **fields), STRICT)
    assert verdict.healthy is healthy
    assert reason_part in verdict.reason


def test_default_thresholds_match_gpupool_spec_defaults() -> None:
    assert gpu_health(gpu(0, xid_events=(48,))).healthy is False
    assert gpu_health(gpu(0, temperature_c=90.5)).healthy is False
    assert gpu_health(gpu(0, temperature_c=89.0)).healthy is True


def test_verdict_unpacks_as_pair() -> None:
    healthy, reason = gpu_health(gpu(0, lost=True))
    assert (healthy, reason.startswith("GPU lost")) == (False, True)


@pytest.mark.parametrize(("now", "stale"), [(1000.0, False), (1090.0, False), (1090.5, True)])
def test_is_stale_after_deadline(now: float, stale: bool) -> None:
    assert is_stale(node(timestamp=1000.0), now=now, deadline_s=90.0) is stale


def test_assess_node_without_report_is_not_fresh() -> None:
    verdict = assess_node(None, now=0.0, thresholds=STRICT, stale_after_s=90.0)
    assert verdict.fresh is False
    assert "no telemetry" in verdict.reason
    assert verdict.healthy_gpu_indices == ()


def test_assess_stale_node_marks_every_gpu_with_reason() -> None:
    verdict = assess_node(
        node(timestamp=1000.0, gpus=2), now=1100.0, thresholds=STRICT, stale_after_s=90.0
    )
    assert verdict.fresh is False
    assert verdict.reason == "telemetry stale: last report 100s ago > 90s deadline"
    unusable = GPUHealth(False, verdict.reason)
    assert verdict.gpus == {0: unusable, 1: unusable}


def test_assess_fresh_node_judges_each_gpu() -> None:
    report = with_gpu(node(timestamp=1000.0, gpus=4), 2, xid_events=(79,))
    verdict = assess_node(report, now=1010.0, thresholds=STRICT, stale_after_s=90.0)
    assert verdict.fresh is True
    assert verdict.healthy_gpu_indices == (0, 1, 3)
    assert verdict.gpus[2].healthy is False
