"""Domain model of the scheduling core: nodes, GPUs, tenants, workloads, allocations.

Every type here is a frozen dataclass (immutable, keyword-only) so that a
:class:`~gpupool.scheduling.snapshot.Snapshot` built from them can be shared
between the operator's cache, the scheduling cycle and the trace simulator
without copies and without surprises.

Units are in the names: ``*_s`` / ``*_at`` are seconds (``*_at`` is a point on
the same clock as ``Snapshot.now``; the core never reads a clock itself),
``*_mib`` is MiB of GPU memory, ``*_per_gpu_hour`` is credits per GPU-hour.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NewType

WorkloadUid = NewType("WorkloadUid", str)
"""Kubernetes UID of a TrainingJob / InferenceService (the simulator uses the job id)."""

NodeName = NewType("NodeName", str)
TenantName = NewType("TenantName", str)
"""A tenant is a namespace allowed to use the pool."""


class Tier(enum.IntEnum):
    """Strict priority tiers: a larger value always goes first."""

    LOW = 0
    NORMAL = 1
    HIGH = 2

    @classmethod
    def parse(cls, text: str) -> Tier:
        """``"high" | "normal" | "low"`` (any case) to a tier; ``ValueError`` otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown priority class {text!r} (expected high, normal or low)"
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()


class WorkloadKind(enum.StrEnum):
    TRAINING = "training"
    INFERENCE = "inference"


@dataclass(frozen=True, slots=True, kw_only=True)
class GPU:
    """One device as the node agent last reported it.

    ``healthy`` is the agent's own verdict (device present, driver answering);
    the core additionally applies :class:`~gpupool.scheduling.config.HealthThresholds`
    to the telemetry fields.
    """

    index: int
    memory_total_mib: int
    memory_free_mib: int
    healthy: bool = True
    utilization_ratio: float = 0.0
    nvlink_domain: int = 0
    """GPUs with the same domain on one node talk over NVLink; a replica stays in one."""
    temperature_c: float | None = None
    xid_errors: frozenset[int] = frozenset()
    """XID codes seen since the GPU was last reset."""
    uncorrected_ecc_errors: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """A pool node and its GPUs (``gpus[i].index == i`` is not required)."""

    name: NodeName
    gpus: tuple[GPU, ...]
    schedulable: bool = True
    """False when cordoned, NotReady, or its agent stopped reporting."""
    rack: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant:
    """A namespace's terms in the pool (``GPUPool.spec.tenants[]``) and its credit balance."""

    name: TenantName
    guaranteed_gpus: int = 0
    """Always theirs: demand inside it is served first and reclaims from borrowers."""
    max_gpus: int | None = None
    """Borrowing ceiling (guaranteed + borrowed); ``None`` means the whole pool."""
    weight: float = 1.0
    """Positive. The fairness agent's bids for this tenant's work are multiplied by
    weight / the pool's mean weight (:func:`gpupool.scheduling.auction.weight_factors`)."""
    credits_per_hour: float = 0.0
    credits_max: float = 0.0
    credit_balance: float = 0.0
    """Credits available now to pay for borrowed GPU-hours (never negative)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuShare:
    """A fractional GPU for an inference replica: a share of compute and measured memory."""

    fraction: float
    """Compute share in (0, 1); the shares on one GPU never sum above 1."""
    memory_mib: int
    """Free GPU memory the replica needs; only placed where measured free memory allows."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaPlacement:
    """Where one replica runs: a node and the GPU indices it uses there."""

    node: NodeName
    gpu_indices: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """The GPUs a running workload holds, per replica, and since when."""

    replicas: tuple[ReplicaPlacement, ...]
    started_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """A TrainingJob (a gang of replicas) or an InferenceService, pending or running.

    Pending: ``allocation is None``. Running: ``allocation`` holds its GPUs.
    Terminating (told to stop, still holding GPUs during its grace period):
    ``allocation`` set and ``preempted_at`` set.
    """

    uid: WorkloadUid
    name: str
    tenant: TenantName
    kind: WorkloadKind = WorkloadKind.TRAINING
    tier: Tier = Tier.NORMAL
    replicas: int = 1
    min_replicas: int | None = None
    """Elastic training / inference: may run with fewer replicas, never below this.
    ``None`` means a rigid gang: all ``replicas`` or nothing."""
    gpus_per_replica: int = 1
    """Whole GPUs per replica (0 when the replica uses ``gpu_share`` instead)."""
    gpu_share: GpuShare | None = None
    bid_per_gpu_hour: float | None = None
    """Explicit bid for borrowed capacity; ``None`` lets the fairness agent bid."""
    submitted_at: float = 0.0
    allocation: Allocation | None = None
    preempted_at: float | None = None
    """Set while a preempted workload is still releasing its GPUs (grace period)."""
    queued_at: float | None = None
    """When it last entered the queue (submission, or requeue after a preemption);
    ``None`` means ``submitted_at``. The fairness agent ages pending work from here."""
    last_checkpoint_at: float | None = None
    restarts: int = 0
    preemptions: int = 0
    """Times it has been preempted so far (``status.preemptions``)."""
    attained_service_s: float = 0.0
    """Seconds it has run before its current allocation (across preemptions/restarts)."""
    expected_duration_s: float | None = None
    """Optional hint (user annotation); the fairness agent uses a prior when absent."""
    labels: tuple[tuple[str, str], ...] = field(default=())

    @property
    def smallest_replica_count(self) -> int:
        return self.replicas if self.min_replicas is None else self.min_replicas

    @property
    def gpus_per_replica_units(self) -> float:
        """GPU units one replica occupies (a share counts as its fraction)."""
        if self.gpu_share is not None:
            return self.gpu_share.fraction
        return float(self.gpus_per_replica)

    @property
    def requested_gpus(self) -> float:
        """GPU units at the full replica count."""
        return self.replicas * self.gpus_per_replica_units

    @property
    def is_running(self) -> bool:
        return self.allocation is not None

    def allocated_gpus(self) -> float:
        """GPU units it holds now (0 when pending)."""
        if self.allocation is None:
            return 0.0
        return len(self.allocation.replicas) * self.gpus_per_replica_units
