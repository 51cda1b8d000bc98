"""What the cache keeps of each watched object: small frozen records parsed once per event.

Parsing happens when an event arrives (reconcilers), not once per scheduling
cycle, so a cycle over thousands of jobs only reads ready-made records.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from gpupool.api.inferenceservice import InferenceServiceSpec, InferenceServiceStatus
from gpupool.api.pool import GPUPoolSpec
from gpupool.api.trainingjob import TrainingJobSpec, TrainingJobStatus
from gpupool.k8s import names
from gpupool.k8s.bodies import ObjectRef
from gpupool.telemetry.model import NodeTelemetry


class PodPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


class WorkloadKindName(enum.StrEnum):
    TRAINING_JOB = names.TRAINING_JOB_KIND
    INFERENCE_SERVICE = names.INFERENCE_SERVICE_KIND


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolRecord:
    name: str
    uid: str
    generation: int
    spec: GPUPoolSpec
    tenant_credits: Mapping[str, float] = field(default_factory=dict)
    """Credit balances as last persisted in ``status.tenants[].credits``."""
    raw_status: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(
            api_version=names.API_VERSION,
            kind=names.POOL_KIND,
            name=self.name,
            namespace="",
            uid=self.uid,
        )


SpecT = TypeVar("SpecT", TrainingJobSpec, InferenceServiceSpec)
StatusT = TypeVar("StatusT", TrainingJobStatus, InferenceServiceStatus)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadRecord(Generic[SpecT, StatusT]):
    """A TrainingJob or InferenceService: what :class:`JobRecord` and :class:`ServiceRecord` share.

    ``spec`` is ``None`` when it failed to parse (``spec_error`` says why).
    """

    KIND: ClassVar[str]
    """The kind of the object, for :attr:`ref`."""

    uid: str
    name: str
    namespace: str
    generation: int
    created_at: float
    resource_version: int
    spec: SpecT | None
    status: StatusT
    raw_status: Mapping[str, Any]
    spec_error: str | None = None
    deleting: bool = False

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(
            api_version=names.API_VERSION,
            kind=self.KIND,
            name=self.name,
            namespace=self.namespace,
            uid=self.uid,
        )

    @property
    def pool(self) -> str | None:
        return None if self.spec is None else self.spec.pool


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRecord(WorkloadRecord[TrainingJobSpec, TrainingJobStatus]):
    """A TrainingJob."""

    KIND: ClassVar[str] = names.TRAINING_JOB_KIND

    expected_duration_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRecord(WorkloadRecord[InferenceServiceSpec, InferenceServiceStatus]):
    """An InferenceService."""

    KIND: ClassVar[str] = names.INFERENCE_SERVICE_KIND


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRecord:
    name: str
    labels: Mapping[str, str]
    capacity: Mapping[str, int]
    """Extended resources the kubelet advertises (``nvidia.com/gpu``: 8)."""
    ready: bool
    unschedulable: bool
    telemetry: NodeTelemetry | None = None
    telemetry_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PodRecord:
    """One of the pods the operator created (worker or inference replica)."""

    uid: str
    name: str
    namespace: str
    resource_version: int
    owner_uid: str
    owner_kind: WorkloadKindName
    replica: int
    attempt: int
    node: str | None
    """``spec.nodeName`` once bound."""
    assigned_node: str | None
    """Where the operator meant to bind it (annotation), bound or not."""
    gpu_indices: tuple[int, ...]
    phase: PodPhase
    ready: bool = False
    deleting: bool = False
    exit_code: int | None = None
    """Exit code of the first terminated container that failed (or 0), once terminal."""
    started_at: float | None = None
    checkpoint_at: float | None = None
    """When the newest checkpoint a terminated container reported (its termination
    message, written by the trainer on exit) became durable."""

    @property
    def terminal(self) -> bool:
        return self.phase in (PodPhase.SUCCEEDED, PodPhase.FAILED)

    @property
    def holds_gpus(self) -> bool:
        """A pod that has not finished still occupies its GPUs (even while terminating)."""
        return not self.terminal and (self.node or self.assigned_node) is not None
