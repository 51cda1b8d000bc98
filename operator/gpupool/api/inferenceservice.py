"""InferenceService: a scalable set of model-server replicas (namespaced, `isvc`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from gpupool.api.base import ApiModel, cel_rule
from gpupool.api.common import (
    API_VERSION,
    MAX_GPUS_PER_NODE,
    Bid,
    Condition,
    ObjectMeta,
    ReplicaPlacement,
    WorkloadSpec,
    conditions_field,
    observed_generation_field,
    placement_field,
    pod_template_field,
    price_per_gpu_hour_field,
)
from gpupool.api.resource import AGE, PRICE, PrinterColumn, Resource, ScaleSubresource

MAX_REPLICAS = 1024


class ModelSpec(ApiModel):
    """The model the servers load."""

    uri: Annotated[str, StringConstraints(max_length=2048, pattern=r"^[a-z][a-z0-9+.-]*://.+$")] = (
        Field(description="Where the model lives, e.g. pvc://models/resnet50.pt or s3://b/m.")
    )


class AutoscalingSpec(ApiModel):
    """Scale replicas between minReplicas and maxReplicas to hold a metric at a target."""

    metric: Literal["concurrency", "rps", "gpuUtilization"] = Field(
        default="concurrency",
        description="concurrency (in-flight requests per replica), rps (requests per "
        "second per replica) or gpuUtilization (percent).",
    )
    target: float = Field(
        gt=0, le=1_000_000, description="Value of the metric per replica to hold."
    )
    scale_to_zero_after_seconds: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="Scale to zero after this long without requests; 0 never does "
        "(needs minReplicas 0 otherwise).",
    )

    @cel_rule(
        "self.metric != 'gpuUtilization' || self.target <= 100.0",
        message="a gpuUtilization target is a percentage and must not exceed 100",
        field_path=".target",
    )
    def utilization_is_percentage(self) -> bool:
        return self.metric != "gpuUtilization" or self.target <= 100


class InferenceServiceSpec(WorkloadSpec):
    """A model server: replicas behind one Service, each with whole or shared GPUs."""

    bid: Bid | None = Field(
        default=None,
        description="Offer for borrowed GPUs; unset lets the fairness agent bid.",
    )
    replicas: int = Field(
        default=1,
        ge=0,
        le=MAX_REPLICAS,
        description="Desired server pods; the scale subresource (kubectl scale, HPA) sets it.",
    )
    min_replicas: int = Field(
        default=1, ge=0, le=MAX_REPLICAS, description="Fewest replicas; 0 allows scale to zero."
    )
    max_replicas: int | None = Field(
        default=None, ge=1, le=MAX_REPLICAS, description="Most replicas; unset means no limit."
    )
    gpus_per_replica: float = Field(
        default=1.0,
        gt=0,
        le=MAX_GPUS_PER_NODE,
        description="GPUs of each replica: a whole number, or a fraction below 1 to share "
        "a GPU (then gpuMemoryMiB is required).",
    )
    gpu_memory_mib: int | None = Field(
        default=None,
        ge=1,
        le=1_048_576,
        description="GPU memory each replica needs, in MiB; required for a shared GPU.",
    )
    model: ModelSpec | None = Field(default=None, description="The model the servers load.")
    autoscaling: AutoscalingSpec | None = Field(
        default=None, description="Metric-driven scaling; unset keeps spec.replicas."
    )
    template: dict[str, Any] = pod_template_field(
        "PodTemplateSpec of a server: image, command, env, CPU and memory, volumes. "
        "The operator adds GPUs and the node binding."
    )

    @cel_rule(
        "self.minReplicas <= self.replicas",
        message="minReplicas must not exceed replicas",
        field_path=".minReplicas",
    )
    def min_within_replicas(self) -> bool:
        return self.min_replicas <= self.replicas

    @cel_rule(
        "!has(self.maxReplicas) || self.replicas <= self.maxReplicas",
        message="replicas must not exceed maxReplicas",
        field_path=".replicas",
    )
    def replicas_within_max(self) -> bool:
        return self.max_replicas is None or self.replicas <= self.max_replicas

    @cel_rule(
        "self.gpusPerReplica >= 1.0 || has(self.gpuMemoryMiB)",
        message="a fractional gpusPerReplica (a shared GPU) requires gpuMemoryMiB",
        field_path=".gpusPerReplica",
    )
    def shared_gpu_has_memory(self) -> bool:
        return self.gpus_per_replica >= 1 or self.gpu_memory_mib is not None

    @cel_rule(
        "self.gpusPerReplica < 1.0 || self.gpusPerReplica == double(int(self.gpusPerReplica))",
        message="gpusPerReplica of 1 or more must be a whole number",
        field_path=".gpusPerReplica",
    )
    def whole_gpus_above_one(self) -> bool:
        return self.gpus_per_replica < 1 or self.gpus_per_replica.is_integer()

    @cel_rule(
        "!has(self.autoscaling) || self.autoscaling.scaleToZeroAfterSeconds == 0 "
        "|| self.minReplicas == 0",
        message="autoscaling.scaleToZeroAfterSeconds requires minReplicas 0",
        field_path=".autoscaling.scaleToZeroAfterSeconds",
    )
    def scale_to_zero_allowed(self) -> bool:
        return (
            self.autoscaling is None
            or self.autoscaling.scale_to_zero_after_seconds == 0
            or self.min_replicas == 0
        )


class InferenceServiceStatus(ApiModel):
    """Observed state of an inference service, written by the operator."""

    observed_generation: int | None = observed_generation_field()
    replicas: int | None = Field(
        default=None, ge=0, description="Server pods that exist (the scale subresource reads it)."
    )
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Server pods that are ready."
    )
    selector: str | None = Field(
        default=None, description="Label selector of the server pods, for the HPA."
    )
    url: str | None = Field(default=None, description="Where the service answers.")
    allocated_gpus: float | None = Field(
        default=None, ge=0, description="GPUs the service holds now (fractions for shares)."
    )
    price_per_gpu_hour: float | None = price_per_gpu_hour_field()
    placement: list[ReplicaPlacement] | None = placement_field()
    message: str | None = Field(
        default=None, description="Why the service is in its state, e.g. why replicas wait."
    )
    conditions: list[Condition] | None = conditions_field(
        "Latest observations of the service's state."
    )


class InferenceService(ApiModel):
    """An InferenceService object as stored by the API server."""

    api_version: Literal["gpupool.io/v1alpha1"] = API_VERSION
    kind: Literal["InferenceService"] = "InferenceService"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: InferenceServiceSpec
    status: InferenceServiceStatus | None = None


INFERENCE_SERVICES = Resource(
    kind="InferenceService",
    plural="inferenceservices",
    short_names=("isvc",),
    namespaced=True,
    description="A model server whose replicas get whole or shared GPUs from a GPUPool.",
    spec_model=InferenceServiceSpec,
    status_model=InferenceServiceStatus,
    printer_columns=(
        PrinterColumn("POOL", ".spec.pool", "string", "The GPUPool the service runs in."),
        PrinterColumn("READY", ".status.readyReplicas", "integer", "Ready server pods."),
        PrinterColumn("REPLICAS", ".spec.replicas", "integer", "Desired server pods."),
        PRICE,
        PrinterColumn("URL", ".status.url", "string", "Where the service answers."),
        AGE,
        PrinterColumn("PRIORITY", ".spec.priorityClass", "string", "Scheduling tier.", priority=1),
        PrinterColumn(
            "GPUS/REPLICA", ".spec.gpusPerReplica", "number", "GPUs per replica.", priority=1
        ),
    ),
    scale=ScaleSubresource(
        spec_replicas_path=".spec.replicas",
        status_replicas_path=".status.replicas",
        label_selector_path=".status.selector",
    ),
)
