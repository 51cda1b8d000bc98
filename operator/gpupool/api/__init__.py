"""The gpupool API (group gpupool.io, version v1alpha1): models of the three kinds.

These pydantic models are the single source of truth of the CRDs in ``crds/``
(``python -m gpupool.api.crdgen``). Parse a spec from a body with
``TrainingJobSpec.model_validate(body["spec"])``; build a status patch with
``status.model_dump(exclude_none=True)`` (camelCase, JSON-ready).
"""

from gpupool.api.base import ApiModel, CelRule, cel_rule
from gpupool.api.common import (
    API_VERSION,
    GROUP,
    PRIORITY_CLASSES,
    VERSION,
    Bid,
    Condition,
    LabelSelector,
    LabelSelectorRequirement,
    ObjectMeta,
    PriorityClass,
    ReplicaPlacement,
    timestamp,
)
from gpupool.api.inferenceservice import (
    INFERENCE_SERVICES,
    AutoscalingSpec,
    InferenceService,
    InferenceServiceSpec,
    InferenceServiceStatus,
    ModelSpec,
)
from gpupool.api.pool import (
    GPUPOOLS,
    AuctionSpec,
    CreditBudget,
    GPUPool,
    GPUPoolSpec,
    GPUPoolStatus,
    HealthSpec,
    PoolGPUs,
    PreemptionSpec,
    Tenant,
    TenantStatus,
)
from gpupool.api.resource import CATEGORY, PrinterColumn, Resource, ScaleSubresource
from gpupool.api.trainingjob import (
    TRAINING_JOBS,
    TRAINING_PHASES,
    CheckpointSpec,
    ElasticSpec,
    FailurePolicy,
    PlacementSpec,
    TorchSpec,
    TrainingJob,
    TrainingJobSpec,
    TrainingJobStatus,
    TrainingPhase,
)

RESOURCES: tuple[Resource, ...] = (GPUPOOLS, TRAINING_JOBS, INFERENCE_SERVICES)
"""Every gpupool kind, in the order their CRDs are generated."""

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GPUPOOLS",
    "GROUP",
    "INFERENCE_SERVICES",
    "PRIORITY_CLASSES",
    "RESOURCES",
    "TRAINING_JOBS",
    "TRAINING_PHASES",
    "VERSION",
    "ApiModel",
    "AuctionSpec",
    "AutoscalingSpec",
    "Bid",
    "CelRule",
    "CheckpointSpec",
    "Condition",
    "CreditBudget",
    "ElasticSpec",
    "FailurePolicy",
    "GPUPool",
    "GPUPoolSpec",
    "GPUPoolStatus",
    "HealthSpec",
    "InferenceService",
    "InferenceServiceSpec",
    "InferenceServiceStatus",
    "LabelSelector",
    "LabelSelectorRequirement",
    "ModelSpec",
    "ObjectMeta",
    "PlacementSpec",
    "PoolGPUs",
    "PreemptionSpec",
    "PrinterColumn",
    "PriorityClass",
    "ReplicaPlacement",
    "Resource",
    "ScaleSubresource",
    "Tenant",
    "TenantStatus",
    "TorchSpec",
    "TrainingJob",
    "TrainingJobSpec",
    "TrainingJobStatus",
    "TrainingPhase",
    "cel_rule",
    "timestamp",
]
