"""TrainingJob: a gang of distributed PyTorch workers (namespaced, `tj`)."""

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
    Timestamp,
    WorkloadSpec,
    conditions_field,
    observed_generation_field,
    placement_field,
    pod_template_field,
    price_per_gpu_hour_field,
    section_field,
)
from gpupool.api.resource import AGE, PRICE, PrinterColumn, Resource

MAX_REPLICAS = 1024

TrainingPhase = Literal["Queued", "Scheduled", "Running", "Preempting", "Succeeded", "Failed"]
TRAINING_PHASES: tuple[TrainingPhase, ...] = (
    "Queued",
    "Scheduled",
    "Running",
    "Preempting",
    "Succeeded",
    "Failed",
)


class ElasticSpec(ApiModel):
    """Lets the job run with fewer replicas than asked and grow when GPUs free up."""

    min_replicas: int = Field(
        ge=1,
        le=MAX_REPLICAS,
        description="Fewest replicas the job may run with; at most spec.replicas.",
    )


class PlacementSpec(ApiModel):
    """How replicas are laid out over nodes."""

    topology: Literal["pack", "spread"] = Field(
        default="pack",
        description="pack: as few NVLink domains and racks as possible (fast collectives); "
        "spread: as many nodes as possible (failure isolation).",
    )
    same_rack: bool = Field(default=False, description="Require every replica to be in one rack.")


class TorchSpec(ApiModel):
    """How workers start torchrun."""

    nproc_per_node: Annotated[int, Field(ge=1, le=MAX_GPUS_PER_NODE * 8)] | Literal["auto"] = Field(
        default="auto",
        description="Processes per worker pod (torchrun --nproc-per-node): a positive "
        "number, or auto for one per GPU of the replica.",
    )
    backend: Literal["auto", "nccl", "gloo"] = Field(
        default="auto",
        description="torch.distributed backend: auto (nccl when the worker sees a GPU, "
        "gloo otherwise), nccl (needs GPUs: without one the worker exits 2) or gloo.",
    )
    port: int = Field(
        default=29500, ge=1024, le=65535, description="Rendezvous port (MASTER_PORT)."
    )

    @cel_rule(
        "!has(self.nprocPerNode) || (type(self.nprocPerNode) == string "
        "? self.nprocPerNode == 'auto' : self.nprocPerNode >= 1)",
        message="nprocPerNode must be auto or a positive number",
        field_path=".nprocPerNode",
    )
    def nproc_auto_or_positive(self) -> bool:
        return isinstance(self.nproc_per_node, str) or self.nproc_per_node >= 1


class CheckpointSpec(ApiModel):
    """Where workers save and resume from; the volume comes from the pod template."""

    path: Annotated[str, StringConstraints(max_length=4096, pattern=r"^/")] = Field(
        description="Absolute directory inside the worker containers."
    )
    every_seconds: int = Field(
        default=600, ge=1, le=604800, description="Seconds between periodic checkpoints."
    )


class FailurePolicy(ApiModel):
    """What happens when a worker fails."""

    max_restarts: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="Whole-gang restarts from the last checkpoint before the job fails.",
    )


class TrainingJobSpec(WorkloadSpec):
    """A distributed PyTorch training job: a gang of replicas that start together."""

    bid: Bid | None = Field(
        default=None,
        description="Offer for borrowed GPUs; unset lets the fairness agent bid for the job.",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=MAX_REPLICAS,
        description="Worker pods, one per node slice (torchrun nodes).",
    )
    gpus_per_replica: int = Field(
        default=1, ge=1, le=MAX_GPUS_PER_NODE, description="GPUs of each worker pod."
    )
    elastic: ElasticSpec | None = Field(
        default=None,
        description="Allow running with fewer replicas; unset means all or nothing.",
    )
    placement: PlacementSpec = section_field(PlacementSpec, "How replicas are laid out over nodes.")
    torch: TorchSpec = section_field(TorchSpec, "How workers start torchrun.")
    checkpoint: CheckpointSpec | None = Field(
        default=None,
        description="Periodic checkpoints, also taken when the job is preempted; unset "
        "means a restarted job starts over.",
    )
    failure_policy: FailurePolicy = section_field(FailurePolicy, "What happens on failure.")
    template: dict[str, Any] = pod_template_field(
        "PodTemplateSpec of a worker: image, command, env, CPU and memory, volumes. "
        "The operator adds GPUs, the torchrun environment and the node binding."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=31536000,
        description="Delete the job this long after it succeeds or fails; unset keeps it.",
    )

    @cel_rule(
        "!has(self.elastic) || self.elastic.minReplicas <= self.replicas",
        message="elastic.minReplicas must not exceed replicas",
        field_path=".elastic.minReplicas",
    )
    def elastic_within_replicas(self) -> bool:
        return self.elastic is None or self.elastic.min_replicas <= self.replicas


class TrainingJobStatus(ApiModel):
    """Observed state of a training job, written by the operator."""

    observed_generation: int | None = observed_generation_field()
    phase: TrainingPhase | None = Field(
        default=None,
        description="Queued, Scheduled, Running, Preempting, Succeeded or Failed.",
    )
    replicas: int | None = Field(
        default=None,
        ge=0,
        description="Replicas placed now (fewer than spec.replicas while elastic and shrunk).",
    )
    allocated_gpus: int | None = Field(default=None, ge=0, description="GPUs the job holds now.")
    placement: list[ReplicaPlacement] | None = placement_field()
    price_per_gpu_hour: float | None = price_per_gpu_hour_field()
    credits_spent: float | None = Field(
        default=None, ge=0, description="Credits spent on borrowed GPUs so far."
    )
    restarts: int | None = Field(default=None, ge=0, description="Whole-gang restarts so far.")
    preemptions: int | None = Field(default=None, ge=0, description="Times preempted so far.")
    last_checkpoint_time: Timestamp | None = Field(
        default=None, description="When the workers last reported a checkpoint."
    )
    run_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Seconds the job held GPUs in launches that have ended (preempted, "
        "restarted or finished): its service so far, carried across preemptions and "
        "restarts; the running launch adds the time since it was placed.",
    )
    queue_position: int | None = Field(
        default=None, ge=0, description="Position among the pool's waiting workloads."
    )
    message: str | None = Field(
        default=None,
        description="Why the job is in its phase, e.g. why it waits: "
        "'needs 32 GPUs, 12 free at tier normal, bid 0.4 < price 0.9'.",
    )
    start_time: Timestamp | None = Field(
        default=None, description="When the job first started running."
    )
    completion_time: Timestamp | None = Field(
        default=None, description="When the job succeeded or failed."
    )
    conditions: list[Condition] | None = conditions_field("Latest observations of the job's state.")


class TrainingJob(ApiModel):
    """A TrainingJob object as stored by the API server."""

    api_version: Literal["gpupool.io/v1alpha1"] = API_VERSION
    kind: Literal["TrainingJob"] = "TrainingJob"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TrainingJobSpec
    status: TrainingJobStatus | None = None


TRAINING_JOBS = Resource(
    kind="TrainingJob",
    plural="trainingjobs",
    short_names=("tj",),
    namespaced=True,
    description="A distributed PyTorch training job whose workers get GPUs from a GPUPool.",
    spec_model=TrainingJobSpec,
    status_model=TrainingJobStatus,
    printer_columns=(
        PrinterColumn("POOL", ".spec.pool", "string", "The GPUPool the job runs in."),
        PrinterColumn("GPUS", ".status.allocatedGPUs", "integer", "GPUs the job holds now."),
        PrinterColumn("PRIORITY", ".spec.priorityClass", "string", "Scheduling tier."),
        PrinterColumn("PHASE", ".status.phase", "string", "Lifecycle phase."),
        PRICE,
        AGE,
        PrinterColumn(
            "REPLICAS", ".spec.replicas", "integer", "Worker pods asked for.", priority=1
        ),
        PrinterColumn(
            "GPUS/REPLICA", ".spec.gpusPerReplica", "integer", "GPUs per worker.", priority=1
        ),
        PrinterColumn(
            "MESSAGE", ".status.message", "string", "Why the job is in its phase.", priority=1
        ),
    ),
)
