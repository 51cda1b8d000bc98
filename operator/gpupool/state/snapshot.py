"""A pool's view of the cache -> the core's immutable :class:`Snapshot` (pure).

Nodes: GPUs come from the node agent's telemetry annotation when there is one:
measured free memory, NVLink domains, and the health fields the core checks
against the pool's thresholds (each unhealthy GPU's reason, in words, goes to
``gpu_problems``). A stale report (agent silent past the deadline) makes the node
unschedulable: nothing new lands there, work already running stays (a silent
agent is no evidence that its GPUs failed). A node without any report is trusted
from its ``nvidia.com/gpu`` capacity (healthy, memory from its GPU model label)
unless ``require_telemetry`` is set.

Workloads: jobs and services of the pool whose namespace is a tenant, with a
parsed spec, that are not finished. A ``PLACED`` workload holds the GPUs in its
``status.placement``; a ``RELEASING`` one holds what its remaining pods hold.
A running InferenceService scaled up beyond its placement adds a *scale request*:
a pending elastic workload for the missing replicas (``<uid>+scale``), because
the core binds pending workloads only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from gpupool.api.pool import GPUPoolSpec
from gpupool.k8s import names
from gpupool.k8s.conditions import find_condition
from gpupool.k8s.timestamps import parse_rfc3339, rfc3339
from gpupool.scheduling.config import FairnessAgentConfig, HealthThresholds, PoolConfig
from gpupool.scheduling.health import is_usable
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
from gpupool.scheduling.snapshot import Snapshot
from gpupool.state.cache import PoolView
from gpupool.state.records import JobRecord, NodeRecord, PodRecord, ServiceRecord
from gpupool.state.stages import (
    CONDITION_PREEMPTING,
    CONDITION_RESTARTING,
    CONDITION_SCHEDULED,
    Stage,
    condition_since,
    conditions_of,
    job_stage,
    service_stage,
    true_since,
)
from gpupool.telemetry.health import gpu_health, is_stale
from gpupool.telemetry.sim_nodes import memory_from_model

SCALE_SUFFIX = "+scale"


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotSettings:
    telemetry_stale_after_s: float = 90.0
    require_telemetry: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltSnapshot:
    snapshot: Snapshot
    config: PoolConfig
    not_admitted: Mapping[str, str] = field(default_factory=dict)
    """Workload UID -> why it never runs in this pool (namespace not a tenant, bad spec)."""
    scale_requests: Mapping[WorkloadUid, str] = field(default_factory=dict)
    """Pseudo workload UID -> the InferenceService UID it grows."""
    node_problems: Mapping[str, str] = field(default_factory=dict)
    """Node name -> why its GPUs are out of the pool (not ready, stale telemetry)."""
    gpu_problems: Mapping[tuple[str, int], str] = field(default_factory=dict)
    """(node, GPU index) -> why that GPU is unhealthy, from its last telemetry report
    (``"XID 79 (GPU has fallen off the bus)"``)."""


def pool_config(spec: GPUPoolSpec) -> PoolConfig:
    return PoolConfig(
        reserve_price_per_gpu_hour=spec.auction.reserve_price_per_gpu_hour,
        grace_period_s=float(spec.preemption.grace_period_seconds),
        min_runtime_s=float(spec.preemption.min_runtime_seconds),
        outbid_margin_ratio=spec.preemption.outbid_margin_percent / 100.0,
        veteran_share=spec.auction.veteran_share_percent / 100.0,
        veteran_age_credit=spec.auction.veteran_age_credit_percent / 100.0,
        veteran_min_attained_s=float(spec.auction.veteran_min_run_seconds),
        fairness=FairnessAgentConfig(short_job_bonus=spec.auction.short_job_bonus_percent / 100.0),
        health=HealthThresholds(
            max_temperature_c=float(spec.health.max_temperature_c),
            evict_on_xid=frozenset(spec.health.evict_on_xid),
        ),
    )


def tenants_of(spec: GPUPoolSpec, balances: Mapping[str, float]) -> dict[TenantName, Tenant]:
    """The pool's tenants; a tenant without a known balance starts with a full budget."""
    tenants: dict[TenantName, Tenant] = {}
    for terms in spec.tenants:
        name = TenantName(terms.namespace)
        tenants[name] = Tenant(
            name=name,
            guaranteed_gpus=terms.guaranteed_gpus,
            max_gpus=terms.max_gpus,
            weight=float(terms.weight),
            credits_per_hour=terms.credits.per_hour,
            credits_max=terms.credits.max,
            credit_balance=balances.get(terms.namespace, terms.credits.max),
        )
    return tenants


def build_snapshot(
    view: PoolView,
    *,
    now: float,
    balances: Mapping[str, float],
    settings: SnapshotSettings = SnapshotSettings(),
) -> BuiltSnapshot:
    spec = view.pool.spec
    config = pool_config(spec)
    tenants = tenants_of(spec, balances)
    node_problems: dict[str, str] = {}
    gpu_problems: dict[tuple[str, int], str] = {}
    nodes: list[Node] = []
    for record in view.nodes:
        node, problem = core_node(
            record, gpu_resource=spec.gpu_resource_name, now=now, settings=settings
        )
        if node is not None:
            nodes.append(node)
            gpu_problems.update(unhealthy_gpus(record, node, config.health))
        if problem is not None:
            node_problems[record.name] = problem

    workloads: dict[WorkloadUid, Workload] = {}
    not_admitted: dict[str, str] = {}
    scale_requests: dict[WorkloadUid, str] = {}
    for job in view.jobs:
        reason = admission_problem(job.namespace, job.spec_error, spec, view.pool.name)
        if reason is not None:
            not_admitted[job.uid] = reason
            continue
        workload = training_workload(job, view.pods_of(job.uid), now=now)
        if workload is not None:
            workloads[workload.uid] = workload
    for service in view.services:
        reason = admission_problem(service.namespace, service.spec_error, spec, view.pool.name)
        if reason is not None:
            not_admitted[service.uid] = reason
            continue
        for workload in inference_workloads(service, view.pods_of(service.uid), now=now):
            workloads[workload.uid] = workload
            if workload.uid.endswith(SCALE_SUFFIX):
                scale_requests[workload.uid] = service.uid

    return BuiltSnapshot(
        snapshot=Snapshot(
            now=now,
            nodes=tuple(nodes),
            tenants=tenants,
            workloads=workloads,
            pool=view.pool.name,
        ),
        config=config,
        not_admitted=not_admitted,
        scale_requests=scale_requests,
        node_problems=node_problems,
        gpu_problems=gpu_problems,
    )


def admission_problem(
    namespace: str, spec_error: str | None, spec: GPUPoolSpec, pool: str
) -> str | None:
    if spec_error is not None:
        return f"invalid spec: {spec_error}"
    if not any(tenant.namespace == namespace for tenant in spec.tenants):
        return f"namespace {namespace} is not a tenant of GPUPool {pool}"
    return None


def core_node(
    record: NodeRecord, *, gpu_resource: str, now: float, settings: SnapshotSettings
) -> tuple[Node | None, str | None]:
    """The core's node (``None`` without GPUs) and why its GPUs are unusable, if they are."""
    count = record.capacity.get(gpu_resource, 0)
    telemetry = record.telemetry
    if count <= 0 and telemetry is None:
        return None, None
    problem: str | None = None
    if not record.ready:
        problem = "node not Ready"
    elif record.unschedulable:
        problem = "node cordoned"
    rack = record.labels.get(names.NODE_LABEL_RACK, "")
    if telemetry is not None:
        deadline = settings.telemetry_stale_after_s
        if problem is None and is_stale(telemetry, now=now, deadline_s=deadline):
            # Stable wording (no "N s ago"): the message lands in statuses every cycle.
            problem = (
                f"telemetry stale: no report from the gpupool node agent since "
                f"{rfc3339(telemetry.timestamp)} (deadline {deadline:g}s)"
            )
        gpus = tuple(
            GPU(
                index=gpu.index,
                memory_total_mib=gpu.memory_total_mib or 0,
                memory_free_mib=gpu.memory_free_mib
                if gpu.memory_free_mib is not None
                else gpu.memory_total_mib or 0,
                healthy=not gpu.lost,
                utilization_ratio=(gpu.sm_utilization_pct or 0.0) / 100.0,
                nvlink_domain=gpu.nvlink_domain
                if gpu.nvlink_domain is not None
                else -1 - gpu.index,
                temperature_c=gpu.temperature_c,
                xid_errors=frozenset(gpu.xid_history) | frozenset(gpu.xid_events),
                uncorrected_ecc_errors=gpu.ecc_volatile_uncorrected or 0,
            )
            for gpu in telemetry.gpus
        )
    else:
        if settings.require_telemetry and problem is None:
            problem = (
                f"telemetry unreadable: {record.telemetry_error}"
                if record.telemetry_error
                else "no telemetry from the gpupool node agent"
            )
        memory = memory_from_model(record.labels.get(names.NODE_LABEL_GPU_MODEL, ""))
        gpus = tuple(
            GPU(index=index, memory_total_mib=memory, memory_free_mib=memory, healthy=True)
            for index in range(count)
        )
    node = Node(name=NodeName(record.name), gpus=gpus, schedulable=problem is None, rack=rack)
    return node, problem


def unhealthy_gpus(
    record: NodeRecord, node: Node, thresholds: HealthThresholds
) -> dict[tuple[str, int], str]:
    """(node, GPU index) -> reason, for exactly the GPUs the core's health filter takes
    out (its cheap check first; the telemetry's verdict only words the reason)."""
    telemetry = record.telemetry
    if telemetry is None:
        return {}
    problems: dict[tuple[str, int], str] = {}
    for gpu in node.gpus:
        if is_usable(gpu, thresholds):
            continue
        reported = telemetry.gpu(gpu.index)
        verdict = gpu_health(reported, thresholds) if reported is not None else None
        problems[(record.name, gpu.index)] = (
            verdict.reason if verdict is not None and not verdict.healthy else "unusable"
        )
    return problems


def _tier(priority_class: str) -> Tier:
    return Tier.parse(priority_class)


def _placement_from_status(
    placements: Sequence[tuple[str, Sequence[int]]],
) -> tuple[ReplicaPlacement, ...]:
    return tuple(
        ReplicaPlacement(node=NodeName(node), gpu_indices=tuple(gpus)) for node, gpus in placements
    )


def _held_by_pods(pods: Sequence[PodRecord]) -> tuple[ReplicaPlacement, ...]:
    """What the pods that have not finished still occupy, by replica order."""
    return tuple(
        ReplicaPlacement(
            node=NodeName(pod.node or pod.assigned_node or ""), gpu_indices=pod.gpu_indices
        )
        for pod in sorted(pods, key=lambda pod: (pod.attempt, pod.replica, pod.name))
        if pod.holds_gpus
    )


def training_workload(job: JobRecord, pods: Sequence[PodRecord], *, now: float) -> Workload | None:
    """The core's view of a TrainingJob, or ``None`` when it takes no part (finished)."""
    spec = job.spec
    if spec is None or job.deleting:
        return None
    stage = job_stage(job)
    if stage is Stage.FINISHED:
        return None
    allocation: Allocation | None = None
    preempted_at: float | None = None
    if stage is Stage.PLACED:
        placement = _placement_from_status(
            [(entry.node, entry.gpus) for entry in job.status.placement or []]
        )
        started = condition_since(job.raw_status, CONDITION_SCHEDULED) or job.created_at
        allocation = Allocation(replicas=placement, started_at=started)
    elif stage is Stage.RELEASING:
        held = _held_by_pods(pods)
        if not held:
            return None  # nothing left to release: the lifecycle requeues it
        started = condition_since(job.raw_status, CONDITION_SCHEDULED) or job.created_at
        allocation = Allocation(replicas=held, started_at=started)
        preempted_at = (
            true_since(job.raw_status, CONDITION_PREEMPTING)
            or true_since(job.raw_status, CONDITION_RESTARTING)
            or now
        )
    last_checkpoint = job.status.last_checkpoint_time
    return Workload(
        uid=WorkloadUid(job.uid),
        name=job.name,
        tenant=TenantName(job.namespace),
        kind=WorkloadKind.TRAINING,
        tier=_tier(spec.priority_class),
        replicas=spec.replicas,
        min_replicas=spec.elastic.min_replicas if spec.elastic is not None else None,
        gpus_per_replica=spec.gpus_per_replica,
        bid_per_gpu_hour=spec.bid.max_price_per_gpu_hour if spec.bid is not None else None,
        submitted_at=job.created_at,
        allocation=allocation,
        preempted_at=preempted_at,
        last_checkpoint_at=last_checkpoint.timestamp() if last_checkpoint is not None else None,
        queued_at=job_queued_at(job),
        restarts=job.status.restarts or 0,
        preemptions=job.status.preemptions or 0,
        attained_service_s=float(job.status.run_seconds or 0),
        expected_duration_s=job.expected_duration_s,
    )


def job_queued_at(job: JobRecord) -> float:
    """When the job last entered the queue: the moment its ``Scheduled`` condition turned
    False (released after a preemption or a gang restart), else its creation."""
    found = find_condition(conditions_of(job.raw_status), CONDITION_SCHEDULED)
    if found is not None and found.get("status") == "False":
        since = parse_rfc3339(found.get("lastTransitionTime"))
        if since is not None:
            return since
    return job.created_at


def inference_workloads(
    service: ServiceRecord, pods: Sequence[PodRecord], *, now: float
) -> tuple[Workload, ...]:
    """The service as a workload, plus a scale request when it runs below ``replicas``."""
    spec = service.spec
    if spec is None or service.deleting:
        return ()
    stage = service_stage(service)
    whole = spec.gpus_per_replica >= 1
    base = Workload(
        uid=WorkloadUid(service.uid),
        name=service.name,
        tenant=TenantName(service.namespace),
        kind=WorkloadKind.INFERENCE,
        tier=_tier(spec.priority_class),
        replicas=spec.replicas,
        min_replicas=max(1, min(spec.min_replicas, spec.replicas)),
        gpus_per_replica=int(spec.gpus_per_replica) if whole else 0,
        gpu_share=None
        if whole
        else GpuShare(fraction=spec.gpus_per_replica, memory_mib=spec.gpu_memory_mib or 0),
        bid_per_gpu_hour=spec.bid.max_price_per_gpu_hour if spec.bid is not None else None,
        submitted_at=service.created_at,
    )
    started = condition_since(service.raw_status, CONDITION_SCHEDULED) or service.created_at
    if stage is Stage.QUEUED:
        return (base,) if spec.replicas > 0 else ()
    if stage is Stage.RELEASING:
        held = _held_by_pods(pods)
        if not held:
            return ()
        preempted_at = true_since(service.raw_status, CONDITION_PREEMPTING) or now
        return (
            _with_allocation(base, held, started, replicas=len(held), preempted_at=preempted_at),
        )
    placement = _placement_from_status(
        [(entry.node, entry.gpus) for entry in service.status.placement or []]
    )
    kept = placement[: spec.replicas]
    leaving = _held_by_pods([pod for pod in pods if pod.replica >= spec.replicas])
    holding = kept + leaving
    if not holding:
        return ()
    running = _with_allocation(base, holding, started, replicas=len(holding))
    missing = spec.replicas - len(kept)
    if missing <= 0 or not kept:
        return (running,)
    scale = Workload(
        uid=WorkloadUid(f"{service.uid}{SCALE_SUFFIX}"),
        name=f"{service.name} (+{missing})",
        tenant=base.tenant,
        kind=WorkloadKind.INFERENCE,
        tier=base.tier,
        replicas=missing,
        min_replicas=1,
        gpus_per_replica=base.gpus_per_replica,
        gpu_share=base.gpu_share,
        bid_per_gpu_hour=base.bid_per_gpu_hour,
        submitted_at=service.created_at,
    )
    return (running, scale)


def _with_allocation(
    base: Workload,
    placement: tuple[ReplicaPlacement, ...],
    started: float,
    *,
    replicas: int,
    preempted_at: float | None = None,
) -> Workload:
    return replace(
        base,
        replicas=replicas,
        min_replicas=min(base.min_replicas or replicas, replicas),
        allocation=Allocation(replicas=placement, started_at=started),
        preempted_at=preempted_at,
    )
