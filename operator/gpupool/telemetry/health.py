"""Pure verdicts on telemetry: is a GPU usable, is a node's report fresh enough.

The operator and the scheduling core call these with a pool's
``spec.health`` thresholds (:class:`gpupool.scheduling.HealthThresholds`); the
agent calls them with its own flags to decide when a change is worth publishing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from gpupool.scheduling.config import HealthThresholds
from gpupool.telemetry.model import GPUTelemetry, NodeTelemetry

XID_DESCRIPTIONS: Mapping[int, str] = {
    13: "graphics engine exception",
    31: "GPU memory page fault",
    43: "GPU stopped processing",
    45: "preemptive cleanup after previous errors",
    48: "double-bit ECC error",
    61: "internal micro-controller breakpoint/warning",
    62: "internal micro-controller halt",
    63: "ECC page retirement or row remapping event",
    64: "ECC page retirement or row remapping failure",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
    119: "GSP RPC timeout",
    120: "GSP error",
}
"""What the common XID codes mean (NVIDIA's XID catalog), for human-readable reasons."""

HEALTHY_REASON = "ok"
DEFAULT_THRESHOLDS = HealthThresholds()
"""``GPUPool.spec.health`` defaults: 90C, XID 48/63/64/74/79, no uncorrected ECC."""


class GPUHealth(NamedTuple):
    """``(healthy, reason)``; ``reason`` is ``"ok"`` when healthy, else says why not."""

    healthy: bool
    reason: str


def describe_xid(xid: int) -> str:
    """``"XID 79 (GPU has fallen off the bus)"``; unknown codes get just the number."""
    meaning = XID_DESCRIPTIONS.get(xid)
    return f"XID {xid} ({meaning})" if meaning else f"XID {xid}"


def gpu_health(gpu: GPUTelemetry, thresholds: HealthThresholds = DEFAULT_THRESHOLDS) -> GPUHealth:
    """Whether a GPU may hold work, checked in this order (first failure wins):

    1. lost (NVML says the GPU fell off the bus or it vanished);
    2. an XID in ``thresholds.evict_on_xid`` seen since the source started;
    3. more uncorrected ECC errors than ``max_uncorrected_ecc_errors``;
    4. temperature above ``max_temperature_c``.

    Unknown values (``None``) never make a GPU unhealthy on their own: older
    drivers lack some counters, and the agent reports loss separately.
    """
    if gpu.lost:
        return GPUHealth(False, "GPU lost (fell off the bus or vanished)")
    seen = set(gpu.xid_history).union(gpu.xid_events)
    evicting = sorted(seen.intersection(thresholds.evict_on_xid))
    if evicting:
        return GPUHealth(False, ", ".join(describe_xid(xid) for xid in evicting))
    uncorrected = gpu.ecc_volatile_uncorrected
    if uncorrected is not None and uncorrected > thresholds.max_uncorrected_ecc_errors:
        return GPUHealth(
            False,
            f"{uncorrected} uncorrected ECC errors"
            f" > {thresholds.max_uncorrected_ecc_errors} allowed",
        )
    temperature = gpu.temperature_c
    if temperature is not None and temperature > thresholds.max_temperature_c:
        return GPUHealth(
            False, f"temperature {temperature:.0f}C > {thresholds.max_temperature_c:.0f}C"
        )
    return GPUHealth(True, HEALTHY_REASON)


def telemetry_age_s(telemetry: NodeTelemetry, *, now: float) -> float:
    """Seconds since the report was read (negative if the agent's clock runs ahead)."""
    return now - telemetry.timestamp


def is_stale(telemetry: NodeTelemetry, *, now: float, deadline_s: float) -> bool:
    """True when the node's agent has been silent for longer than ``deadline_s``.

    The agent rewrites its report at least every heartbeat (30 s by default), so a
    deadline of about three heartbeats tolerates one lost write without flapping.
    """
    return telemetry_age_s(telemetry, now=now) > deadline_s


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeHealth:
    """The operator's view of one node's report: fresh or not, and each GPU's verdict."""

    fresh: bool
    """False when there is no report or it is older than the deadline."""
    reason: str
    """``"ok"``, or why the whole node's GPUs are unusable."""
    gpus: Mapping[int, GPUHealth] = field(default_factory=dict)
    """Verdict per GPU index (all unhealthy with ``reason`` when not fresh)."""

    @property
    def healthy_gpu_indices(self) -> tuple[int, ...]:
        return tuple(sorted(index for index, health in self.gpus.items() if health.healthy))


def assess_node(
    telemetry: NodeTelemetry | None,
    *,
    now: float,
    thresholds: HealthThresholds,
    stale_after_s: float,
) -> NodeHealth:
    """Combine freshness and per-GPU health into one verdict for a node.

    No report (``None``) or a stale one makes every GPU unusable with a reason the
    operator can show (GPUPool status, an Event), e.g. ``"telemetry stale: last
    report 95s ago > 90s deadline"``.
    """
    if telemetry is None:
        return NodeHealth(fresh=False, reason="no telemetry from the gpupool node agent")
    if is_stale(telemetry, now=now, deadline_s=stale_after_s):
        age = telemetry_age_s(telemetry, now=now)
        reason = f"telemetry stale: last report {age:.0f}s ago > {stale_after_s:.0f}s deadline"
        return NodeHealth(
            fresh=False,
            reason=reason,
            gpus={gpu.index: GPUHealth(False, reason) for gpu in telemetry.gpus},
        )
    return NodeHealth(
        fresh=True,
        reason=HEALTHY_REASON,
        gpus={gpu.index: gpu_health(gpu, thresholds) for gpu in telemetry.gpus},
    )
