"""The NVML source on real hardware; skips with the reason where there is none."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from gpupool.scheduling.model import NodeName
from gpupool.telemetry.model import GPUTelemetry, TelemetryUnavailable
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


LOAD = """
import sys, torch
hog = torch.empty(2 * 1024**3, dtype=torch.uint8, device="cuda:0")
a = torch.randn(4096, 4096, device="cuda:0")
print("ready", flush=True)
while True:
    for _ in range(50):
        a = torch.tanh(a @ a)
    torch.cuda.synchronize()
"""


def await_gpu0(
    source: NVMLSource, what: str, check: Callable[[GPUTelemetry], bool], timeout: float = 60.0
) -> GPUTelemetry:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = source.read(now=time.time())[0].gpu(0)
        if last is not None and check(last):
            return last
        time.sleep(0.2)
    raise AssertionError(f"GPU 0 never showed {what} within {timeout}s; last read: {last!r}")


def test_real_load_shows_in_memory_and_utilization_and_goes_away(source: NVMLSource) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA GPU to load")
    idle = await_gpu0(source, "a reading", lambda gpu: gpu.memory_used_mib is not None)
    assert idle.memory_used_mib is not None
    baseline = idle.memory_used_mib
    load = subprocess.Popen(
        [sys.executable, "-c", LOAD],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"},  # CUDA 0 = NVML 0
    )
    try:
        assert load.stdout is not None and load.stdout.readline().strip() == "ready"
        busy = await_gpu0(
            source,
            "2 GiB more memory used and SM utilization >= 50%",
            lambda gpu: (
                (gpu.memory_used_mib or 0) >= baseline + 2000
                and (gpu.sm_utilization_pct or 0) >= 50
            ),
        )
        assert busy.power_w is None or idle.power_w is None or busy.power_w > idle.power_w
    finally:
        load.kill()
        load.wait(30)
    await_gpu0(
        source,
        "the memory given back",
        lambda gpu: (gpu.memory_used_mib or 0) < baseline + 500,
    )
