"""What a node agent knows about its GPUs: one frozen record per GPU and per node.

Units are in the names: ``*_mib`` is MiB of GPU memory, ``*_pct`` is percent
(0-100), ``*_c`` degrees Celsius, ``*_w`` watts, ``timestamp`` seconds since the
Unix epoch on the agent's clock. ``None`` means "this driver/device cannot tell"
(an older driver without the function, a field the device does not support, or a
GPU that is lost), never zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NewType, Protocol

from gpupool.scheduling.model import NodeName

GpuUuid = NewType("GpuUuid", str)
"""NVML's stable device id, e.g. ``GPU-5f0c...``."""


class TelemetryUnavailable(RuntimeError):
    """A telemetry source cannot start at all (no NVML library, no driver, no devices).

    Raised once, at construction; a source that started reports per-GPU trouble
    in the records instead (``lost``, ``None`` fields), never by raising per read.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class GPUTelemetry:
    """One GPU as read at one instant."""

    index: int
    uuid: GpuUuid
    model: str
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    memory_free_mib: int | None = None
    sm_utilization_pct: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    clocks_throttle_reasons: int | None = None
    """NVML ``nvmlClocksThrottleReason*`` bit mask (0 = running at full clocks)."""
    ecc_volatile_corrected: int | None = None
    """Corrected (single-bit) ECC errors since the driver loaded."""
    ecc_volatile_uncorrected: int | None = None
    """Uncorrected (double-bit) ECC errors since the driver loaded."""
    xid_events: tuple[int, ...] = ()
    """XID codes reported since the previous read, in arrival order (repeats kept)."""
    xid_history: tuple[int, ...] = ()
    """Distinct XID codes seen on this GPU since the source started, sorted.

    Sticky on purpose: a GPU that reported XID 79 stays suspect until the
    device is reset (which restarts the agent with the driver)."""
    nvlink_peers: tuple[int, ...] = ()
    """Indices of GPUs on the same node reachable over an active NVLink."""
    nvlink_domain: int | None = None
    """GPUs of one node with the same domain talk over NVLink (the smallest GPU
    index of the NVLink island); ``None`` when the GPU has no active NVLink."""
    lost: bool = False
    """NVML answered ``GPU is lost`` (fell off the bus) or the device vanished."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeTelemetry:
    """All GPUs of one node, read at ``timestamp``."""

    node: NodeName
    timestamp: float
    gpus: tuple[GPUTelemetry, ...]
    source: str = ""
    """Which implementation produced it: ``"nvml"`` or ``"simulated"``."""

    def gpu(self, index: int) -> GPUTelemetry | None:
        """The GPU with this index, or ``None``."""
        for gpu in self.gpus:
            if gpu.index == index:
                return gpu
        return None


class TelemetrySource(Protocol):
    """A door to GPU hardware (real or simulated): the only place telemetry I/O happens.

    ``read`` is called once per agent tick; ``now`` is the agent's clock and
    becomes each record's ``timestamp``. XID events are consumed by a read: the
    next read reports only newer ones (``xid_history`` keeps them all).
    """

    def read(self, *, now: float) -> Sequence[NodeTelemetry]:
        """One record per node this source covers (one for NVML, many when simulated)."""
        ...

    def close(self) -> None:
        """Release the driver / event sets; the source is unusable afterwards."""
        ...
