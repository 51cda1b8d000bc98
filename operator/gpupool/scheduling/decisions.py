"""The output of one scheduling cycle: what the actuator must do and what status to show."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

from gpupool.scheduling.model import ReplicaPlacement, Tier, WorkloadUid

Placement = tuple[ReplicaPlacement, ...]
"""One entry per replica, in rank order (replica 0 hosts the rendezvous)."""


class PreemptionCause(enum.StrEnum):
    HIGHER_TIER = "higher-tier"
    """A workload of a higher tier needs the GPUs."""
    GUARANTEE_RECLAIM = "guarantee-reclaim"
    """A tenant reclaims GPUs inside its guarantee from a borrower."""
    OUTBID = "outbid"
    """A borrower lost its borrowed GPUs in the auction (after ``min_runtime_s``)."""
    UNHEALTHY_GPU = "unhealthy-gpu"
    """One of its GPUs or its node left the pool; it restarts elsewhere."""
    CREDITS_EXHAUSTED = "credits-exhausted"
    """Its tenant can no longer pay the reserve price for borrowed GPUs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Preemption:
    uid: WorkloadUid
    cause: PreemptionCause
    reason: str
    """Human-readable, for the Event and ``status.message``."""
    grace_deadline: float
    """GPUs are reclaimed at this time; the workload checkpoints before it."""
    preemptor: WorkloadUid | None = None
    preemptor_guaranteed: bool = False
    """The preemptor was inside its tenant's guarantee (a reclaim or a guaranteed tier)."""


class WaitCode(enum.StrEnum):
    NO_CAPACITY = "no-capacity"
    OUTBID = "outbid"
    BELOW_RESERVE = "below-reserve"
    NO_CREDITS = "no-credits"
    OVER_TENANT_MAX = "over-tenant-max"
    NO_PLACEMENT = "no-placement"
    """Enough GPUs are free in total but not in a shape the gang can use."""
    AWAITING_RELEASE = "awaiting-release"
    """GPUs are being freed for it by preemptions in their grace period."""
    TOO_LARGE = "too-large"
    """Larger than the pool's healthy capacity: it can never run as specified."""
    UNKNOWN_TENANT = "unknown-tenant"


class WaitingReason(NamedTuple):
    """Why a workload is still pending after this cycle (cheap to build, formatted lazily)."""

    code: WaitCode
    needed_gpus: float
    free_gpus: float
    """GPUs free at its tier (free now plus what it could preempt) when its turn came."""
    tier: Tier
    bid_per_gpu_hour: float
    price_per_gpu_hour: float
    detail: str = ""

    @property
    def message(self) -> str:
        need = _fmt_gpus(self.needed_gpus)
        free = _fmt_gpus(self.free_gpus)
        head = f"needs {need} GPUs, {free} free at tier {self.tier.label}"
        code = self.code
        if code is WaitCode.OUTBID:
            text = f"{head}, bid {self.bid_per_gpu_hour:.3g} < price {self.price_per_gpu_hour:.3g}"
        elif code is WaitCode.BELOW_RESERVE:
            text = (
                f"{head}, bid {self.bid_per_gpu_hour:.3g} < reserve price "
                f"{self.price_per_gpu_hour:.3g}"
            )
        elif code is WaitCode.NO_PLACEMENT:
            text = f"{head}, but no nodes with a shape the gang fits"
        elif code is WaitCode.AWAITING_RELEASE:
            text = f"needs {need} GPUs, waiting for preempted workloads to release them"
        elif code is WaitCode.TOO_LARGE:
            text = f"needs {need} GPUs, more than the pool can ever place"
        elif code is WaitCode.NO_CREDITS:
            text = f"{head}, tenant credits cannot pay the reserve price"
        elif code is WaitCode.OVER_TENANT_MAX:
            text = f"needs {need} GPUs, tenant at its maxGPUs ceiling"
        elif code is WaitCode.UNKNOWN_TENANT:
            text = "namespace is not a tenant of this pool"
        else:
            text = head
        return f"{text} ({self.detail})" if self.detail else text


def _fmt_gpus(gpus: float) -> str:
    return str(int(gpus)) if gpus == int(gpus) else f"{gpus:.2f}"


K = TypeVar("K")
V = TypeVar("V")


class LazyMapping(Mapping[K, V], Generic[K, V]):
    """A read-only mapping built on first use (a simulator never reads most reasons)."""

    __slots__ = ("_build", "_data")

    def __init__(self, build: Callable[[], dict[K, V]]) -> None:
        self._build: Callable[[], dict[K, V]] | None = build
        self._data: dict[K, V] | None = None

    def _materialize(self) -> dict[K, V]:
        data = self._data
        if data is None:
            assert self._build is not None
            data = self._data = self._build()
            self._build = None
        return data

    def __getitem__(self, key: K) -> V:
        return self._materialize()[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._materialize())

    def __len__(self) -> int:
        return len(self._materialize())

    def __contains__(self, key: object) -> bool:
        return key in self._materialize()

    def __repr__(self) -> str:
        return f"LazyMapping({self._materialize()!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decisions:
    """What one cycle decided. Every pending workload is in ``bindings`` or ``waiting``."""

    now: float
    bindings: Mapping[WorkloadUid, Placement]
    """Pending workloads to start now, on exactly these GPUs (already free)."""
    preemptions: Mapping[WorkloadUid, Preemption]
    """Running workloads to stop gracefully (they requeue and resume from checkpoint)."""
    clearing_price_per_gpu_hour: float
    """The pool's uniform price for borrowed capacity this cycle (``status`` of the pool)."""
    prices: Mapping[WorkloadUid, float]
    """Per-GPU-hour price each bound or continuing workload pays (0 inside a guarantee)."""
    bids: Mapping[WorkloadUid, float]
    """The effective (credit-capped) bid used for each workload that borrowed or competed."""
    waiting: Mapping[WorkloadUid, WaitingReason]
    """Why each still-pending workload waits; ``reason.message`` is the status text."""
    queue_positions: Mapping[WorkloadUid, int]
    """1-based position of each waiting workload in the order the cycle considered them."""
