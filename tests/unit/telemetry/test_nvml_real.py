"""The NVML source on real hardware; skips with the reason where there is none."""

from __future__ import annotations

import socket

import pytest

from gpupool.scheduling.model import NodeName
from gpupool.telemetry.model import TelemetryUnavailable
from gpupool.telemetry.nvml_source import NVMLSource

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def source() -> NVMLSource:
    try:
        started = NVMLSource.start(node=NodeName(socket.gethostname()))
    except TelemetryUnavailable as reason:
        pytest.skip(f"no NVIDIA GPU/driver: {reason}")
    return started


def test_real_gpus_report_plausible_values(source: NVMLSource) -> None:
    (report,) = source.read(now=1.0)
    assert report.gpus, "NVML started but reported no GPUs"
    for gpu in report.gpus:
        assert gpu.uuid.startswith(("GPU-", "MIG-"))
        assert not gpu.lost
        assert gpu.memory_total_mib is not None and gpu.memory_total_mib > 1024
        assert gpu.memory_free_mib is not None
        assert gpu.memory_used_mib is not None
        assert gpu.memory_free_mib + gpu.memory_used_mib <= gpu.memory_total_mib + 1
        if gpu.temperature_c is not None:
            assert 0 < gpu.temperature_c < 120
        if gpu.sm_utilization_pct is not None:
            assert 0 <= gpu.sm_utilization_pct <= 100
        if gpu.power_w is not None:
            assert 0 < gpu.power_w < 2000


def test_real_reads_are_repeatable_and_consume_no_stale_events(source: NVMLSource) -> None:
    first = source.read(now=2.0)[0]
    second = source.read(now=3.0)[0]
    assert [g.uuid for g in first.gpus] == [g.uuid for g in second.gpus]
    assert all(g.xid_events == () for g in second.gpus)
