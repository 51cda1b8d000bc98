"""Builders for telemetry records in tests: ``gpu(3, temperature_c=95.0)``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gpupool.scheduling.model import NodeName
from gpupool.telemetry.model import GPUTelemetry, GpuUuid, NodeTelemetry


def gpu(index: int = 0, **fields: Any) -> GPUTelemetry:
    """A healthy, idle 80 GiB GPU; override any field by keyword."""
    base = GPUTelemetry(
        index=index,
        uuid=GpuUuid(f"GPU-test-{index}"),
        model="NVIDIA H100 80GB HBM3",
        memory_total_mib=81559,
        memory_used_mib=0,
        memory_free_mib=81559,
        sm_utilization_pct=0.0,
        temperature_c=35.0,
        power_w=70.0,
        clocks_throttle_reasons=0,
        ecc_volatile_corrected=0,
        ecc_volatile_uncorrected=0,
        nvlink_peers=tuple(i for i in range(8) if i != index),
        nvlink_domain=0,
    )
    return replace(base, **fields)


def node(name: str = "node-a", *, timestamp: float = 1000.0, gpus: int = 8) -> NodeTelemetry:
    return NodeTelemetry(
        node=NodeName(name),
        timestamp=timestamp,
        gpus=tuple(gpu(i) for i in range(gpus)),
        source="test",
    )


def with_gpu(telemetry: NodeTelemetry, index: int, **fields: Any) -> NodeTelemetry:
    """The same node report with GPU ``index`` changed."""
    return replace(
        telemetry,
        gpus=tuple(replace(g, **fields) if g.index == index else g for g in telemetry.gpus),
    )
