"""The core's decisions -> per-object changes (pure).

For each workload of the pool, at most one change: bound workloads get their
placement recorded and their pods launched; preempted ones are told to stop
gracefully; waiting ones get the core's one-line reason and queue position;
running ones get their price and spend; workloads that can never run here get
an ``Admitted=False`` condition and one Event. Changes a lifecycle pass made
this cycle are not revisited (their objects are skipped).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from gpupool.api.common import ReplicaPlacement as StatusPlacement
from gpupool.k8s import names
from gpupool.k8s.conditions import find_condition, set_condition
from gpupool.k8s.events import EventType, event
from gpupool.loop.actions import Change, Write
from gpupool.loop.context import CycleContext
from gpupool.loop.pods import launch_gang, launch_replicas, stop_pods
from gpupool.loop.service_lifecycle import base_status, service_change
from gpupool.loop.status import minimal_patch, patched_job
from gpupool.loop.unavailable import eviction_cause, waiting_note, with_note
from gpupool.scheduling.decisions import Decisions, Placement, Preemption, PreemptionCause
from gpupool.scheduling.model import WorkloadUid
from gpupool.state.cache import PoolView
from gpupool.state.records import JobRecord, ServiceRecord
from gpupool.state.snapshot import BuiltSnapshot
from gpupool.state.stages import (
    CONDITION_ADMITTED,
    CONDITION_BID_CAPPED,
    CONDITION_PREEMPTING,
    CONDITION_SCHEDULED,
    REASON_UNHEALTHY_GPU,
    Stage,
    conditions_of,
    job_attempt,
    job_stage,
    service_stage,
)

CAUSE_REASONS: Mapping[PreemptionCause, str] = {
    PreemptionCause.HIGHER_TIER: "HigherTier",
    PreemptionCause.GUARANTEE_RECLAIM: "GuaranteeReclaim",
    PreemptionCause.OUTBID: "Outbid",
    PreemptionCause.UNHEALTHY_GPU: REASON_UNHEALTHY_GPU,
    PreemptionCause.CREDITS_EXHAUSTED: "CreditsExhausted",
}


def plan_changes(
    view: PoolView,
    built: BuiltSnapshot,
    decisions: Decisions,
    ctx: CycleContext,
    *,
    credits_spent: Mapping[str, float],
    skip: frozenset[str] = frozenset(),
) -> list[Change]:
    """One change per workload that needs one (jobs, then services)."""
    changes: list[Change] = []
    note = waiting_note(built)
    for job in view.jobs:
        if job.uid in skip:
            continue
        change = _job_change(
            job,
            view,
            built=built,
            decisions=decisions,
            ctx=ctx,
            credits_spent=credits_spent,
            note=note,
        )
        if change is not None:
            changes.append(change)
    scale_bindings: dict[str, Placement] = {
        built.scale_requests[uid]: placement
        for uid, placement in decisions.bindings.items()
        if uid in built.scale_requests
    }
    scale_waiting = {
        built.scale_requests[uid]: with_note(reason, reason.message, note)
        for uid, reason in decisions.waiting.items()
        if uid in built.scale_requests
    }
    for service in view.services:
        if service.uid in skip:
            continue
        change = _service_change(
            service,
            view,
            built=built,
            decisions=decisions,
            ctx=ctx,
            scale_binding=scale_bindings.get(service.uid),
            scale_waiting=scale_waiting.get(service.uid),
            note=note,
        )
        if change is not None:
            changes.append(change)
    return changes


# -- shared pieces -------------------------------------------------------------------


def _conditions(
    raw_status: Mapping[str, Any], now: float, *updates: tuple[str, bool, str, str]
) -> list[Any]:
    conditions: list[Any] = list(conditions_of(raw_status))
    for type_, status, reason, message in updates:
        conditions = list(
            set_condition(
                conditions, type_=type_, status=status, reason=reason, message=message, now=now
            )
        )
    return conditions


def _placement(placement: Placement, *, first_slot: int = 0) -> list[StatusPlacement]:
    return [
        StatusPlacement(
            replica=first_slot + index, node=str(entry.node), gpus=list(entry.gpu_indices)
        )
        for index, entry in enumerate(placement)
    ]


def _placement_json(placement: Sequence[StatusPlacement]) -> list[dict[str, Any]]:
    return [entry.model_dump(mode="json") for entry in placement]


def _bid_condition(
    raw_status: Mapping[str, Any],
    *,
    explicit_bid: float | None,
    effective_bid: float | None,
    tenant: str,
) -> tuple[str, bool, str, str] | None:
    """``BidCapped`` when the tenant's credits cut an explicit bid; cleared when no longer."""
    if (
        explicit_bid is not None
        and effective_bid is not None
        and effective_bid < explicit_bid - 1e-9
    ):
        return (
            CONDITION_BID_CAPPED,
            True,
            "CreditsCapBid",
            f"bid {explicit_bid:.3g} capped to {effective_bid:.3g} "
            f"by the credits of tenant {tenant}",
        )
    current = find_condition(conditions_of(raw_status), CONDITION_BID_CAPPED)
    if current is not None and current["status"] == "True":
        return (CONDITION_BID_CAPPED, False, "WithinBudget", "")
    return None


def _grace(preemption: Preemption, now: float) -> int:
    return max(0, math.ceil(preemption.grace_deadline - now))


def _event(
    ref_owner: JobRecord | ServiceRecord,
    ctx: CycleContext,
    reason: str,
    message: str,
    *,
    warning: bool = False,
) -> Any:
    return event(
        regarding=ref_owner.ref,
        reason=reason,
        message=message,
        event_type=EventType.WARNING if warning else EventType.NORMAL,
        now=ctx.now,
        reporting_instance=ctx.reporting_instance,
    )


def _not_admitted_reason(message: str) -> str:
    return "InvalidSpec" if message.startswith("invalid spec") else "NotATenant"


# -- jobs ----------------------------------------------------------------------------


def _job_change(
    job: JobRecord,
    view: PoolView,
    *,
    built: BuiltSnapshot,
    decisions: Decisions,
    ctx: CycleContext,
    credits_spent: Mapping[str, float],
    note: str,
) -> Change | None:
    if job.spec is None and job.uid not in built.not_admitted:
        return None
    if job.deleting:
        return None
    uid = WorkloadUid(job.uid)
    raw = job.raw_status
    patch: dict[str, Any]
    if job.uid in built.not_admitted:
        message = built.not_admitted[job.uid]
        current = find_condition(conditions_of(raw), CONDITION_ADMITTED)
        patch = {
            "phase": job.status.phase or "Queued",
            "message": message,
            "conditions": _conditions(
                raw, ctx.now, (CONDITION_ADMITTED, False, _not_admitted_reason(message), message)
            ),
        }
        announce = current is None or current["status"] != "False" or current["message"] != message
        events = (
            (_event(job, ctx, _not_admitted_reason(message), message, warning=True),)
            if announce
            else ()
        )
        return _job_patch(job, patch, events=events)

    spec = job.spec
    assert spec is not None
    explicit_bid = spec.bid.max_price_per_gpu_hour if spec.bid is not None else None
    bid_update = _bid_condition(
        raw, explicit_bid=explicit_bid, effective_bid=decisions.bids.get(uid), tenant=job.namespace
    )
    admitted = (CONDITION_ADMITTED, True, "Admitted", f"tenant of GPUPool {ctx.pool}")
    updates = [admitted] + ([bid_update] if bid_update else [])

    if uid in decisions.bindings:
        placement = _placement(decisions.bindings[uid])
        attempt = job_attempt(job)
        price = decisions.prices.get(uid, 0.0)
        nodes = sorted({entry.node for entry in placement})
        gpus = len(placement) * spec.gpus_per_replica
        message = (
            f"{len(placement)} workers placed on {', '.join(nodes)} ({gpus} GPUs) "
            f"at {price:.3g} credits/GPU-hour"
        )
        patch = {
            "phase": "Scheduled",
            "placement": _placement_json(placement),
            "replicas": len(placement),
            "allocatedGPUs": gpus,
            "pricePerGPUHour": price,
            "restarts": job.status.restarts or 0,
            "preemptions": job.status.preemptions or 0,
            "queuePosition": None,
            "message": message,
            "observedGeneration": job.generation,
            "conditions": _conditions(
                raw, ctx.now, *updates, (CONDITION_SCHEDULED, True, "Placed", message)
            ),
        }
        pods = view.pods_of(job.uid)
        writes = launch_gang(job, attempt=attempt, placement=placement, existing=pods, ctx=ctx)
        return _job_patch(
            job, patch, writes=writes, events=(_event(job, ctx, "Scheduled", message),)
        )

    if uid in decisions.preemptions:
        preemption = decisions.preemptions[uid]
        grace = _grace(preemption, ctx.now)
        reason = CAUSE_REASONS.get(preemption.cause, "Preempted")
        if preemption.cause is PreemptionCause.UNHEALTHY_GPU:
            # Not a preemption (nobody outbid it): a whole-gang restart on other GPUs.
            restarts = (job.status.restarts or 0) + 1
            cause = eviction_cause(built, uid) or preemption.reason
            message = (
                f"{cause}; restarting the whole gang from its last checkpoint on healthy "
                f"GPUs (restart {restarts})"
            )
            counter: dict[str, Any] = {"restarts": restarts}
            event_reason = reason
        else:
            message = f"preempted ({preemption.reason}); {grace}s to checkpoint"
            counter = {"preemptions": (job.status.preemptions or 0) + 1}
            event_reason = "Preempted"
        patch = {
            "phase": "Preempting",
            **counter,
            "message": message,
            "conditions": _conditions(
                raw, ctx.now, *updates, (CONDITION_PREEMPTING, True, reason, message)
            ),
        }
        writes = stop_pods(view.pods_of(job.uid), grace_period_s=grace)
        return _job_patch(
            job,
            patch,
            writes=writes,
            events=(_event(job, ctx, event_reason, message, warning=True),),
        )

    stage = job_stage(job)
    if uid in decisions.waiting and stage is Stage.QUEUED:
        waiting = decisions.waiting[uid]
        reason_text = with_note(waiting, waiting.message, note)
        if bid_update is not None and bid_update[1]:
            reason_text = f"{reason_text}; {bid_update[3]}"
        first = job.status.phase != "Queued"
        patch = {
            "phase": "Queued",
            "message": reason_text,
            "queuePosition": decisions.queue_positions.get(uid),
            "restarts": job.status.restarts or 0,
            "preemptions": job.status.preemptions or 0,
            "conditions": _conditions(raw, ctx.now, *updates),
        }
        events = (_event(job, ctx, "Queued", reason_text),) if job.status.phase is None else ()
        return _job_patch(job, patch, events=events, urgent=first)

    if stage is Stage.PLACED:
        patch = {
            "pricePerGPUHour": round(decisions.prices.get(uid, 0.0), 6),
            "creditsSpent": round(credits_spent.get(job.uid, 0.0), 4),
            "queuePosition": None,
            "conditions": _conditions(raw, ctx.now, *updates),
        }
        return _job_patch(job, patch, urgent=False)
    return None


def _job_patch(
    job: JobRecord,
    patch: Mapping[str, Any],
    *,
    writes: tuple[Write, ...] = (),
    events: tuple[Any, ...] = (),
    urgent: bool = True,
) -> Change | None:
    minimal = minimal_patch(job.raw_status, patch)
    if not minimal and not writes and not events:
        return None
    return Change(
        target=job.ref,
        plural=names.TRAINING_JOB_PLURAL,
        status_patch=minimal or None,
        assumed=patched_job(job, minimal) if minimal else None,
        writes=writes,
        events=events,
        urgent=urgent,
    )


# -- inference services --------------------------------------------------------------


def _service_change(
    service: ServiceRecord,
    view: PoolView,
    *,
    built: BuiltSnapshot,
    decisions: Decisions,
    ctx: CycleContext,
    scale_binding: Placement | None,
    scale_waiting: str | None,
    note: str,
) -> Change | None:
    if service.deleting:
        return None
    raw = service.raw_status
    uid = WorkloadUid(service.uid)
    patch: dict[str, Any]
    if service.uid in built.not_admitted:
        message = built.not_admitted[service.uid]
        current = find_condition(conditions_of(raw), CONDITION_ADMITTED)
        patch = {
            "message": message,
            "conditions": _conditions(
                raw, ctx.now, (CONDITION_ADMITTED, False, _not_admitted_reason(message), message)
            ),
        }
        change = service_change(service, patch)
        announce = current is None or current["status"] != "False" or current["message"] != message
        if change is not None and announce:
            reason = _not_admitted_reason(message)
            return _with_events(change, (_event(service, ctx, reason, message, warning=True),))
        return change
    spec = service.spec
    if spec is None:
        return None
    admitted = (CONDITION_ADMITTED, True, "Admitted", f"tenant of GPUPool {ctx.pool}")
    pods = view.pods_of(service.uid)

    if uid in decisions.bindings:
        placement = _placement(decisions.bindings[uid])
        price = decisions.prices.get(uid, 0.0)
        nodes = sorted({entry.node for entry in placement})
        message = f"{len(placement)} replicas placed on {', '.join(nodes)} at {price:.3g}"
        patch = {
            **base_status(service),
            "placement": _placement_json(placement),
            "allocatedGPUs": len(placement) * spec.gpus_per_replica,
            "pricePerGPUHour": price,
            "message": message,
            "observedGeneration": service.generation,
            "conditions": _conditions(
                raw, ctx.now, admitted, (CONDITION_SCHEDULED, True, "Placed", message)
            ),
        }
        writes = launch_replicas(
            service, placement=placement, existing=pods, ctx=ctx, with_service=True
        )
        change = service_change(service, patch, writes=writes)
        return _with_events(change, (_event(service, ctx, "Scheduled", message),))

    if uid in decisions.preemptions:
        preemption = decisions.preemptions[uid]
        grace = _grace(preemption, ctx.now)
        reason = CAUSE_REASONS.get(preemption.cause, "Preempted")
        cause = (
            eviction_cause(built, uid)
            if preemption.cause is PreemptionCause.UNHEALTHY_GPU
            else None
        )
        message = (
            f"{cause}; replacing its replicas on healthy GPUs"
            if cause is not None
            else f"preempted ({preemption.reason}); draining for {grace}s"
        )
        patch = {
            "message": message,
            "conditions": _conditions(
                raw, ctx.now, admitted, (CONDITION_PREEMPTING, True, reason, message)
            ),
        }
        change = service_change(service, patch, writes=stop_pods(pods, grace_period_s=grace))
        return _with_events(change, (_event(service, ctx, "Preempted", message, warning=True),))

    stage = service_stage(service)
    if scale_binding is not None and stage is Stage.PLACED:
        held = list(service.status.placement or [])
        used = {entry.replica for entry in held}
        free_slots = [slot for slot in range(len(held) + len(scale_binding)) if slot not in used]
        added = [
            StatusPlacement(replica=slot, node=str(entry.node), gpus=list(entry.gpu_indices))
            for slot, entry in zip(free_slots, scale_binding, strict=False)
        ]
        placement = sorted(held + added, key=lambda entry: entry.replica)
        message = f"scaled to {len(placement)} replicas (+{len(added)})"
        patch = {
            "placement": _placement_json(placement),
            "allocatedGPUs": len(placement) * spec.gpus_per_replica,
            "message": message,
        }
        writes = launch_replicas(
            service, placement=added, existing=pods, ctx=ctx, with_service=False
        )
        change = service_change(service, patch, writes=writes)
        return _with_events(change, (_event(service, ctx, "ScaledUp", message),))

    if uid in decisions.waiting and stage is Stage.QUEUED:
        waiting = decisions.waiting[uid]
        message = with_note(waiting, waiting.message, note)
        patch = {
            **base_status(service),
            "message": message,
            "conditions": _conditions(raw, ctx.now, admitted),
        }
        return service_change(service, patch, urgent=False)

    if stage is Stage.PLACED:
        patch = {"pricePerGPUHour": round(decisions.prices.get(uid, 0.0), 6)}
        if scale_waiting is not None:
            patch["message"] = f"{len(service.status.placement or [])}/{spec.replicas} placed; " + (
                f"the rest wait: {scale_waiting}"
            )
        return service_change(service, patch, urgent=False)
    return None


def _with_events(change: Change | None, events: tuple[Any, ...]) -> Change | None:
    if change is None:
        return None
    return Change(
        target=change.target,
        plural=change.plural,
        status_patch=change.status_patch,
        assumed=change.assumed,
        writes=change.writes,
        events=events,
        urgent=change.urgent,
    )
