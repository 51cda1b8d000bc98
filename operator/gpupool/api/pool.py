"""GPUPool: a set of GPU nodes shared by tenant namespaces (cluster-scoped, `gp`)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from gpupool.api.base import ApiModel, cel_rule
from gpupool.api.common import (
    API_VERSION,
    MAX_PRICE_PER_GPU_HOUR,
    Condition,
    DnsLabel,
    LabelSelector,
    ObjectMeta,
    conditions_field,
    observed_generation_field,
    section_field,
)
from gpupool.api.resource import AGE, PrinterColumn, Resource

MAX_TENANTS = 256

MAX_POOL_GPUS = 1_000_000

QUALIFIED_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


class CreditBudget(ApiModel):
    """A tenant's budget for GPUs borrowed beyond its guarantee."""

    per_hour: float = Field(
        default=0.0,
        ge=0,
        le=MAX_PRICE_PER_GPU_HOUR,
        description="Credits added to the tenant's balance every hour.",
    )
    max: float = Field(
        default=0.0,
        ge=0,
        le=1e12,
        description="Ceiling of the tenant's balance; accrual stops there.",
    )


class Tenant(ApiModel):
    """A namespace allowed to run workloads in the pool, with its share."""

    namespace: DnsLabel = Field(description="The tenant's namespace.")
    guaranteed_gpus: int = Field(
        default=0,
        ge=0,
        le=MAX_POOL_GPUS,
        description="GPUs that are always the tenant's: reclaimed from borrowers "
        "(by preemption) when the tenant needs them.",
    )
    max_gpus: int | None = Field(
        default=None,
        ge=0,
        le=MAX_POOL_GPUS,
        description="Most GPUs the tenant may hold at once, guarantee plus borrowed; "
        "unset means no ceiling.",
    )
    weight: int = Field(
        default=1,
        ge=1,
        le=1000,
        description=(
            "Share of contested borrowed GPUs: the fairness agent's default bids for this "
            "tenant's workloads are multiplied by weight / the pool's mean weight. "
            "Explicit bids are not scaled."
        ),
    )
    credits: CreditBudget = section_field(
        CreditBudget, "Budget for borrowed capacity, spent at the auction's clearing price."
    )

    @cel_rule(
        "!has(self.maxGPUs) || self.guaranteedGPUs <= self.maxGPUs",
        message="guaranteedGPUs must not exceed maxGPUs",
        field_path=".guaranteedGPUs",
    )
    def guarantee_within_ceiling(self) -> bool:
        return self.max_gpus is None or self.guaranteed_gpus <= self.max_gpus


class AuctionSpec(ApiModel):
    """The credit auction that prices GPUs borrowed beyond guarantees."""

    interval_seconds: int = Field(
        default=5, ge=1, le=3600, description="Seconds between auction rounds."
    )
    reserve_price_per_gpu_hour: float = Field(
        default=0.05,
        ge=0,
        le=MAX_PRICE_PER_GPU_HOUR,
        description="Lowest clearing price, in credits per GPU-hour.",
    )
    short_job_bonus_percent: int = Field(
        default=400,
        ge=0,
        le=10000,
        description=(
            "The fairness agent's default bid for work that has not run yet is "
            "multiplied by 1 + this / 100, falling toward 1 as it runs: new work, "
            "likely short, gets GPUs first (least-attained-service in bid form)."
        ),
    )
    veteran_share_percent: int = Field(
        default=35,
        ge=0,
        le=100,
        description=(
            "Percent of the pool's GPUs kept for the training jobs that have run longest "
            "(the veterans' lane): they cannot be outbid, so long jobs are not all pushed "
            "to the end of a busy period. 0 disables the lane."
        ),
    )
    veteran_age_credit_percent: int = Field(
        default=30,
        ge=0,
        le=100,
        description=(
            "Orders the veterans' lane: a job's claim to it is its run time, or this "
            "percent of its time since submission if that is more, so a long job that "
            "queued for weeks before it ran is not overtaken by luckier ones forever "
            "(it would finish last, alone on an idle pool). 0 orders by run time alone."
        ),
    )
    veteran_min_run_seconds: int = Field(
        default=86400,
        ge=0,
        le=31536000,
        description="Run time a training job needs before it can join the veterans' lane.",
    )


class PreemptionSpec(ApiModel):
    """How running workloads are evicted to make room."""

    grace_period_seconds: int = Field(
        default=120,
        ge=0,
        le=86400,
        description="Time a victim gets to checkpoint before its pods are deleted.",
    )
    min_runtime_seconds: int = Field(
        default=300,
        ge=0,
        le=604800,
        description="A workload is not preempted before it has run this long (anti-thrash).",
    )
    outbid_margin_percent: int = Field(
        default=200,
        ge=0,
        le=10000,
        description=(
            "A running borrower is preempted for a higher bid only if that bid exceeds "
            "its own by more than this percent (200: more than 3x), since preempting "
            "costs it a grace period and a restart."
        ),
    )


class HealthSpec(ApiModel):
    """Telemetry thresholds that take a GPU out of the pool."""

    max_temperature_c: int = Field(
        default=90,
        ge=40,
        le=120,
        description="A GPU hotter than this (degrees Celsius) is marked unhealthy.",
    )
    evict_on_xid: list[Annotated[int, Field(ge=0, le=65535)]] = Field(
        default=[48, 63, 64, 74, 79],
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="NVIDIA XID error codes that mark a GPU unhealthy and evict its workloads.",
    )


class GPUPoolSpec(ApiModel):
    """Which nodes form the pool, who may use it, and how it is shared."""

    node_selector: LabelSelector = Field(description="Selects the nodes that belong to the pool.")
    gpu_resource_name: Annotated[
        str, StringConstraints(max_length=253, pattern=QUALIFIED_NAME_PATTERN)
    ] = Field(
        default="nvidia.com/gpu",
        description="Extended resource name under which nodes advertise their GPUs.",
    )
    tenants: list[Tenant] = Field(
        default_factory=list,
        max_length=MAX_TENANTS,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["namespace"],
        },
        description="Namespaces allowed to use the pool, with their guarantees and budgets; "
        "one entry per namespace.",
    )
    auction: AuctionSpec = section_field(AuctionSpec, "The auction that prices borrowed GPUs.")
    preemption: PreemptionSpec = section_field(
        PreemptionSpec, "How workloads are preempted to make room."
    )
    health: HealthSpec = section_field(
        HealthSpec, "Telemetry thresholds that take a GPU out of the pool."
    )

    @model_validator(mode="after")
    def _tenant_namespaces_unique(self) -> Self:
        # The API server enforces this through x-kubernetes-list-type: map (a CEL
        # rule comparing every pair of tenants exceeds its cost budget).
        namespaces = [tenant.namespace for tenant in self.tenants]
        duplicates = sorted({name for name in namespaces if namespaces.count(name) > 1})
        if duplicates:
            raise ValueError(f"tenant namespaces must be unique: {', '.join(duplicates)}")
        return self


class PoolGPUs(ApiModel):
    """GPU counts of the pool."""

    total: int | None = Field(default=None, ge=0, description="GPUs on the pool's nodes.")
    healthy: int | None = Field(default=None, ge=0, description="GPUs passing health checks.")
    allocated: int | None = Field(default=None, ge=0, description="GPUs held by workloads.")
    idle: int | None = Field(default=None, ge=0, description="Healthy GPUs held by nobody.")


class TenantStatus(ApiModel):
    """What one tenant holds and owes."""

    namespace: str = Field(max_length=63, description="The tenant's namespace.")
    allocated_gpus: int | None = Field(
        default=None, ge=0, description="GPUs the tenant's workloads hold."
    )
    borrowed_gpus: int | None = Field(
        default=None, ge=0, description="GPUs held beyond the tenant's guarantee."
    )
    credits: float | None = Field(default=None, description="The tenant's credit balance.")
    pending: int | None = Field(
        default=None, ge=0, description="Workloads of the tenant waiting for GPUs."
    )


class GPUPoolStatus(ApiModel):
    """Observed state of the pool, written by the operator."""

    observed_generation: int | None = observed_generation_field()
    nodes: int | None = Field(default=None, ge=0, description="Nodes in the pool.")
    gpus: PoolGPUs | None = Field(default=None, description="GPU counts of the pool.")
    clearing_price_per_gpu_hour: float | None = Field(
        default=None,
        ge=0,
        description="Price of the last auction round, in credits per GPU-hour.",
    )
    tenants: list[TenantStatus] | None = Field(
        default=None, description="Per-tenant allocation and credit balance."
    )
    conditions: list[Condition] | None = conditions_field("Ready, Degraded.")


class GPUPool(ApiModel):
    """A GPUPool object as stored by the API server."""

    api_version: Literal["gpupool.io/v1alpha1"] = API_VERSION
    kind: Literal["GPUPool"] = "GPUPool"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: GPUPoolSpec
    status: GPUPoolStatus | None = None


GPUPOOLS = Resource(
    kind="GPUPool",
    plural="gpupools",
    short_names=("gp",),
    namespaced=False,
    description="A pool of GPU nodes shared by tenant namespaces, scheduled by priority "
    "tiers, guaranteed quotas and a credit auction.",
    spec_model=GPUPoolSpec,
    status_model=GPUPoolStatus,
    printer_columns=(
        PrinterColumn("NODES", ".status.nodes", "integer", "Nodes in the pool."),
        PrinterColumn("GPUS", ".status.gpus.total", "integer", "GPUs on the pool's nodes."),
        PrinterColumn("ALLOCATED", ".status.gpus.allocated", "integer", "GPUs in use."),
        PrinterColumn("HEALTHY", ".status.gpus.healthy", "integer", "Healthy GPUs."),
        PrinterColumn(
            "PRICE",
            ".status.clearingPricePerGPUHour",
            "number",
            "Clearing price of the last auction, credits per GPU-hour.",
        ),
        AGE,
    ),
)
