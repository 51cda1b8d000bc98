"""Types shared by the three gpupool kinds: names, priority, bids, conditions, placement."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from gpupool.api.base import ApiModel, cel_rule

GROUP: Final = "gpupool.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "gpupool.io/v1alpha1"

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

DnsLabel = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
"""A namespace or other DNS-1123 label."""

DnsSubdomain = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
]
"""An object name (DNS-1123 subdomain), such as a GPUPool or Node name."""

PriorityClass = Literal["high", "normal", "low"]
"""Strict scheduling tiers: a higher tier is always served (and may preempt) first."""

PRIORITY_CLASSES: tuple[PriorityClass, ...] = ("high", "normal", "low")

MAX_GPUS_PER_NODE = 16
"""No node has more GPUs than this; a replica asking for more can never be placed."""

MAX_PRICE_PER_GPU_HOUR = 1_000_000.0


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    AwareDatetime,
    PlainSerializer(_rfc3339, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A point in time; dumps as RFC 3339 in UTC with second precision, like metav1.Time."""


def timestamp(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime truncated to seconds (what the API stores)."""
    return moment.astimezone(UTC).replace(microsecond=0)


class Bid(ApiModel):
    """What a workload offers to pay for GPUs it borrows beyond its tenant's guarantee."""

    max_price_per_gpu_hour: float = Field(
        ge=0,
        le=MAX_PRICE_PER_GPU_HOUR,
        description="Highest price, in credits per GPU-hour, this workload pays for "
        "borrowed GPUs. It is outbid (and may be preempted) when the clearing price "
        "rises above this.",
    )


class WorkloadSpec(ApiModel):
    """The spec fields every workload kind (TrainingJob, InferenceService) starts with."""

    pool: DnsSubdomain = Field(description="Name of the GPUPool to run in.")
    priority_class: PriorityClass = Field(
        default="normal",
        description="Strict scheduling tier: high, normal or low. A higher tier is always "
        "served first and may preempt lower tiers.",
    )


class LabelSelectorRequirement(ApiModel):
    """One label requirement (like metav1.LabelSelectorRequirement)."""

    key: str = Field(min_length=1, max_length=317, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the key relates to the values: In, NotIn, Exists or DoesNotExist."
    )
    values: list[Annotated[str, StringConstraints(max_length=63)]] | None = Field(
        default=None,
        max_length=64,
        description="Label values: non-empty for In and NotIn, empty for Exists and DoesNotExist.",
    )

    @cel_rule(
        "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
        message="values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
    )
    def values_match_operator(self) -> bool:
        return (self.operator in ("In", "NotIn")) == bool(self.values)


class LabelSelector(ApiModel):
    """Selects objects by label (like metav1.LabelSelector); all terms must match."""

    match_labels: dict[str, Annotated[str, StringConstraints(max_length=63)]] | None = Field(
        default=None,
        max_length=64,
        description="Labels an object must carry with exactly these values.",
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None,
        max_length=32,
        description="Label requirements an object must satisfy.",
    )


class Condition(ApiModel):
    """A status condition, shaped like metav1.Condition."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Type of the condition in CamelCase, e.g. Ready or Degraded.",
    )
    status: Literal["True", "False", "Unknown"] = Field(
        description="Whether the condition holds: True, False or Unknown."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation the condition was computed from.",
    )
    last_transition_time: Timestamp = Field(description="When the condition last changed status.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Machine-readable CamelCase reason for the last transition.",
    )
    message: str = Field(
        default="",
        max_length=32768,
        description="Human-readable details about the transition.",
    )


class ReplicaPlacement(ApiModel):
    """Where one replica runs: its node and the GPU indices it holds there."""

    replica: int = Field(ge=0, description="Replica index (the worker's node rank).")
    node: str = Field(max_length=253, description="Name of the Node the replica is bound to.")
    gpus: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list,
        description="GPU indices on that node given to the replica (CUDA_VISIBLE_DEVICES).",
    )


class ObjectMeta(BaseModel):
    """The parts of metav1.ObjectMeta gpupool reads; other fields are kept as they are."""

    model_config = ConfigDict(
        extra="allow", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = Field(default=None, alias="resourceVersion")


def pod_template_field(description: str) -> Any:
    """A PodTemplateSpec field: an opaque object in the CRD (the full pod schema is huge)."""
    return Field(
        description=description,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


def section_field(model: type[ApiModel], description: str) -> Any:
    """An optional block whose own fields all have defaults.

    In Python it defaults to ``model()``; in the CRD it defaults to ``{}``, so the
    API server fills in (and stores) the block's field defaults.
    """
    return Field(
        default_factory=model,
        description=description,
        json_schema_extra={"default": {}},
    )


# Fields of the status of more than one kind, with the same meaning (and CRD schema) in each.


def observed_generation_field() -> Any:
    """``status.observedGeneration``: the ``metadata.generation`` the status reflects."""
    return Field(default=None, ge=0, description="The metadata.generation this status reflects.")


def conditions_field(description: str) -> Any:
    """``status.conditions``: a list of :class:`Condition` keyed by ``type``."""
    return Field(
        default=None,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description=description,
    )


def placement_field() -> Any:
    """``status.placement`` of a workload: where each of its replicas runs."""
    return Field(default=None, description="Node and GPU indices of every placed replica.")


def price_per_gpu_hour_field() -> Any:
    """``status.pricePerGPUHour`` of a workload: what it pays for borrowed GPUs."""
    return Field(
        default=None, ge=0, description="Price paid for borrowed GPUs, credits per GPU-hour."
    )
