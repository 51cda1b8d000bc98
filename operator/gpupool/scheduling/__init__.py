"""Pure scheduling core: snapshot in, decisions out.

Imports nothing from kopf, kubernetes, pynvml or prometheus_client and never
reads the wall clock (``Snapshot.now`` is the time). The operator and the trace
simulator (``gpupool.sim``) run the same :func:`run_cycle`.
"""

from gpupool.scheduling.config import FairnessAgentConfig, HealthThresholds, PoolConfig
from gpupool.scheduling.credits import Charge, CreditStatement, settle, settle_all, spend_credits
from gpupool.scheduling.cycle import run_cycle
from gpupool.scheduling.decisions import (
    Decisions,
    Placement,
    Preemption,
    PreemptionCause,
    WaitCode,
    WaitingReason,
)
from gpupool.scheduling.gc_pause import paused_gc
from gpupool.scheduling.model import (
    GPU,
    Allocation,
    GpuShare,
    Node,
    NodeName,
    ReplicaPlacement,
    Tenant,
    TenantName,
    Tier,
    Workload,
    WorkloadKind,
    WorkloadUid,
)
from gpupool.scheduling.snapshot import Snapshot, WorkloadChanges

__all__ = [
    "GPU",
    "Allocation",
    "Charge",
    "CreditStatement",
    "Decisions",
    "FairnessAgentConfig",
    "GpuShare",
    "HealthThresholds",
    "Node",
    "NodeName",
    "Placement",
    "PoolConfig",
    "Preemption",
    "PreemptionCause",
    "ReplicaPlacement",
    "Snapshot",
    "Tenant",
    "TenantName",
    "Tier",
    "WaitCode",
    "WaitingReason",
    "Workload",
    "WorkloadChanges",
    "WorkloadKind",
    "WorkloadUid",
    "paused_gc",
    "run_cycle",
    "settle",
    "settle_all",
    "spend_credits",
]
