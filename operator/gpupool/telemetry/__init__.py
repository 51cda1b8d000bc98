"""GPU telemetry: the ``TelemetrySource`` protocol, NVML and simulated sources, the node agent.

What the operator and the core use (all pure, importing no client library)::

    from gpupool.telemetry import (
        parse_node_telemetry,   # Node annotations -> NodeTelemetry | None
        decode_node_telemetry,  # same, raising TelemetryDecodeError (a ValueError)
        explain_missing_telemetry,
        gpu_health,             # (GPUTelemetry, HealthThresholds) -> GPUHealth(healthy, reason)
        is_stale,               # (NodeTelemetry, now=, deadline_s=) -> bool
        assess_node,            # freshness + per-GPU verdicts with reasons
    )

The agent (``gpupool.telemetry.agent:main``) and the sources import their
dependencies (pynvml, prometheus_client, the API client) only when used.
"""

from gpupool.telemetry.annotations import (
    ANNOTATION_HEARTBEAT,
    ANNOTATION_TELEMETRY,
    TelemetryDecodeError,
    decode_node_telemetry,
    encode_node_telemetry,
    explain_missing_telemetry,
    parse_node_telemetry,
)
from gpupool.telemetry.health import (
    GPUHealth,
    NodeHealth,
    assess_node,
    describe_xid,
    gpu_health,
    is_stale,
)
from gpupool.telemetry.model import (
    GPUTelemetry,
    GpuUuid,
    NodeTelemetry,
    TelemetrySource,
    TelemetryUnavailable,
)

__all__ = [
    "ANNOTATION_HEARTBEAT",
    "ANNOTATION_TELEMETRY",
    "GPUHealth",
    "GPUTelemetry",
    "GpuUuid",
    "NodeHealth",
    "NodeTelemetry",
    "TelemetryDecodeError",
    "TelemetrySource",
    "TelemetryUnavailable",
    "assess_node",
    "decode_node_telemetry",
    "describe_xid",
    "encode_node_telemetry",
    "explain_missing_telemetry",
    "gpu_health",
    "is_stale",
    "parse_node_telemetry",
]
