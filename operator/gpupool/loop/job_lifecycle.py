"""What a TrainingJob's pods say must happen next, independent of the scheduler (pure).

Evaluated every cycle before the core runs, from the job's persisted status and
its pods:

1. ``PLACED``: repair a half-launched gang (missing pods, unbound pods); mark it
   Running once every worker runs; Succeeded once every worker exited 0; on a
   worker failure restart the whole gang (``failurePolicy.maxRestarts``) or fail
   it; exit code 75 (checkpointed after SIGTERM) and a node that left the pool
   requeue it without counting a failure; exit code 2 (bad configuration) fails
   at once.
2. ``RELEASING``: once no pod holds GPUs any more, requeue (phase Queued).
3. ``FINISHED``: delete the job ``ttlSecondsAfterFinished`` after completion.

In every stage, a checkpoint newer than ``status.lastCheckpointTime`` that a
terminated worker reported (its termination message) is recorded there, in the
same patch as the stage's own change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from gpupool.k8s import names
from gpupool.k8s.bodies import Event
from gpupool.k8s.conditions import find_condition, set_condition
from gpupool.k8s.events import EventType, event
from gpupool.k8s.timestamps import rfc3339
from gpupool.loop.actions import Change, DeleteWorkload, Write
from gpupool.loop.context import CycleContext
from gpupool.loop.pods import launch_gang, remove_pods, stop_pods
from gpupool.loop.status import minimal_patch, patched_job
from gpupool.state.records import JobRecord, PodPhase, PodRecord
from gpupool.state.stages import (
    CONDITION_PREEMPTING,
    CONDITION_RESTARTING,
    CONDITION_SCHEDULED,
    REASON_UNHEALTHY_GPU,
    Stage,
    condition_is_true,
    condition_since,
    conditions_of,
    job_attempt,
    job_stage,
)

EXIT_USAGE = 2
"""Bad configuration (workloads contract): restarting will not help."""
EXIT_PREEMPTED = 75
"""SIGTERM received and a checkpoint is durable (workloads contract): requeue."""


def job_lifecycle(
    job: JobRecord,
    pods: Sequence[PodRecord],
    ctx: CycleContext,
    *,
    reported_checkpoint: float | None = None,
) -> Change | None:
    """The change the job's own state calls for this cycle, or ``None``.

    ``reported_checkpoint``: the newest checkpoint time the job's workers reported,
    also by pods already deleted (the cache keeps it); the pods' own reports count too.
    """
    if job.spec is None or job.deleting:
        return None
    change = _stage_change(job, pods, ctx)
    newest = max(
        (at for at in (reported_checkpoint, *(pod.checkpoint_at for pod in pods)) if at),
        default=None,
    )
    return _with_checkpoint(job, change, newest, ctx)


def checkpoint_patch(job: JobRecord, newest: float | None) -> dict[str, Any]:
    """``lastCheckpointTime`` when a worker reported a newer checkpoint than recorded."""
    recorded = job.status.last_checkpoint_time
    if newest is None or (recorded is not None and int(newest) <= recorded.timestamp()):
        return {}
    return {"lastCheckpointTime": rfc3339(newest)}


def _with_checkpoint(
    job: JobRecord, change: Change | None, newest: float | None, ctx: CycleContext
) -> Change | None:
    extra = checkpoint_patch(job, newest)
    if not extra:
        return change
    if change is None:
        return _change(job, extra, ctx)
    patch = {**(change.status_patch or {}), **extra}
    return replace(change, status_patch=patch, assumed=patched_job(job, patch))


def run_seconds_patch(job: JobRecord, now: float) -> dict[str, Any]:
    """``runSeconds`` plus the launch that ends now (from its ``Scheduled=True`` time).

    Sent in the same patch that ends the launch (``Scheduled`` goes False), so a
    replayed cycle never counts a launch twice.
    """
    if not condition_is_true(job.raw_status, CONDITION_SCHEDULED):
        return {}
    since = condition_since(job.raw_status, CONDITION_SCHEDULED)
    if since is None:
        return {}
    return {"runSeconds": (job.status.run_seconds or 0) + max(0, round(now - since))}


def _stage_change(job: JobRecord, pods: Sequence[PodRecord], ctx: CycleContext) -> Change | None:
    stage = job_stage(job)
    if stage is Stage.FINISHED:
        return _expire(job, ctx)
    if stage is Stage.RELEASING:
        return _release(job, pods, ctx)
    if stage is Stage.PLACED:
        return _supervise(job, pods, ctx)
    leftovers = stop_pods(pods, grace_period_s=0) + remove_pods(
        [pod for pod in pods if pod.attempt < job_attempt(job)]
    )
    return _change(job, {}, ctx, writes=leftovers) if leftovers else None


def _change(
    job: JobRecord,
    patch: Mapping[str, Any],
    ctx: CycleContext,
    *,
    writes: tuple[Write, ...] = (),
    reason: str | None = None,
    message: str = "",
    warning: bool = False,
) -> Change | None:
    patch = minimal_patch(job.raw_status, patch)
    events: tuple[Event, ...] = ()
    if reason is not None:
        events = (
            event(
                regarding=job.ref,
                reason=reason,
                message=message,
                event_type=EventType.WARNING if warning else EventType.NORMAL,
                now=ctx.now,
                reporting_instance=ctx.reporting_instance,
            ),
        )
    if not patch and not writes and not events:
        return None
    return Change(
        target=job.ref,
        plural=names.TRAINING_JOB_PLURAL,
        status_patch=patch or None,
        assumed=patched_job(job, patch) if patch else None,
        writes=writes,
        events=events,
    )


def _conditions(job: JobRecord, now: float, *updates: tuple[str, bool, str, str]) -> list[Any]:
    conditions: list[Any] = list(conditions_of(job.raw_status))
    for type_, status, reason, message in updates:
        conditions = list(
            set_condition(
                conditions, type_=type_, status=status, reason=reason, message=message, now=now
            )
        )
    return conditions


def _expire(job: JobRecord, ctx: CycleContext) -> Change | None:
    spec = job.spec
    assert spec is not None
    completed = job.status.completion_time
    ttl = spec.ttl_seconds_after_finished
    if ttl is None or completed is None or completed.timestamp() + ttl > ctx.now:
        return None
    delete = DeleteWorkload(
        plural=names.TRAINING_JOB_PLURAL, namespace=job.namespace, name=job.name, uid=job.uid
    )
    return Change(target=job.ref, plural=names.TRAINING_JOB_PLURAL, writes=(delete,))


def _release(job: JobRecord, pods: Sequence[PodRecord], ctx: CycleContext) -> Change | None:
    """Wait for the pods to go (re-sending deletions a crash may have lost), then requeue."""
    holding = [pod for pod in pods if pod.holds_gpus]
    if holding:
        grace = ctx.grace_period_s
        writes = stop_pods(holding, grace_period_s=grace)
        return _change(job, {}, ctx, writes=writes) if writes else None
    preempting = find_condition(conditions_of(job.raw_status), CONDITION_PREEMPTING)
    was_preempted = job.status.phase == "Preempting" and not (
        preempting is not None and preempting.get("reason") == REASON_UNHEALTHY_GPU
    )
    message = (
        "requeued after preemption; resumes from its last checkpoint when placed again"
        if was_preempted
        else f"requeued for gang restart {job.status.restarts or 0}; resumes from its last "
        "checkpoint when placed again"
    )
    patch = {
        "phase": "Queued",
        "placement": None,
        "replicas": 0,
        "allocatedGPUs": 0,
        "pricePerGPUHour": None,
        **run_seconds_patch(job, ctx.now),
        "message": message,
        "conditions": _conditions(
            job,
            ctx.now,
            (CONDITION_SCHEDULED, False, "Released", "GPUs released"),
            (CONDITION_PREEMPTING, False, "Released", ""),
            (CONDITION_RESTARTING, False, "Released", ""),
        ),
    }
    return _change(job, patch, ctx, writes=remove_pods(pods), reason="Requeued", message=message)


def _supervise(job: JobRecord, pods: Sequence[PodRecord], ctx: CycleContext) -> Change | None:
    spec = job.spec
    assert spec is not None
    attempt = job_attempt(job)
    placement = list(job.status.placement or [])
    current = {pod.replica: pod for pod in pods if pod.attempt == attempt}
    stale = [pod for pod in pods if pod.attempt != attempt]

    lost_nodes = sorted({entry.node for entry in placement} - ctx.pool_nodes)
    if lost_nodes:
        return _requeue(
            job,
            pods,
            ctx,
            reason="NodeLost",
            message=f"node {', '.join(lost_nodes)} left the pool; requeued to resume elsewhere",
        )

    failed = sorted(
        (pod for pod in current.values() if pod.phase is PodPhase.FAILED),
        key=lambda pod: pod.replica,
    )
    if failed:
        return _on_failure(job, failed[0], pods, ctx)

    running = job.status.phase == "Running"
    missing = [entry for entry in placement if entry.replica not in current]
    if missing and running:
        gone = ", ".join(str(entry.replica) for entry in missing)
        return _on_failure(job, None, pods, ctx, detail=f"worker pod(s) {gone} disappeared")

    if placement and all(
        current.get(entry.replica) is not None
        and current[entry.replica].phase is PodPhase.SUCCEEDED
        for entry in placement
    ):
        message = f"all {len(placement)} workers finished"
        finished = {
            "phase": "Succeeded",
            "completionTime": rfc3339(ctx.now),
            "allocatedGPUs": 0,
            **run_seconds_patch(job, ctx.now),
            "queuePosition": None,
            "message": message,
            "conditions": _conditions(
                job, ctx.now, (CONDITION_SCHEDULED, False, "Completed", message)
            ),
        }
        return _change(
            job,
            finished,
            ctx,
            writes=stop_pods(stale, grace_period_s=0),
            reason="Succeeded",
            message=message,
        )

    writes = launch_gang(job, attempt=attempt, placement=placement, existing=pods, ctx=ctx)
    writes += stop_pods(stale, grace_period_s=ctx.grace_period_s)
    if (
        not running
        and placement
        and all(
            (pod := current.get(entry.replica)) is not None
            and pod.phase in (PodPhase.RUNNING, PodPhase.SUCCEEDED)
            for entry in placement
        )
    ):
        nodes = sorted({entry.node for entry in placement})
        message = f"{len(placement)} workers running on {', '.join(nodes)}"
        patch: dict[str, Any] = {"phase": "Running", "message": message}
        if job.status.start_time is None:
            patch["startTime"] = rfc3339(ctx.now)
        return _change(job, patch, ctx, writes=writes, reason="Running", message=message)
    return _change(job, {}, ctx, writes=writes)


def _requeue(
    job: JobRecord, pods: Sequence[PodRecord], ctx: CycleContext, *, reason: str, message: str
) -> Change | None:
    """Release without counting a failure (counts as a preemption: the attempt moves on)."""
    patch = {
        "phase": "Preempting",
        "preemptions": (job.status.preemptions or 0) + 1,
        "message": message,
        "conditions": _conditions(job, ctx.now, (CONDITION_PREEMPTING, True, reason, message)),
    }
    writes = stop_pods(pods, grace_period_s=ctx.grace_period_s)
    return _change(job, patch, ctx, writes=writes, reason=reason, message=message, warning=True)


def _on_failure(
    job: JobRecord,
    failed: PodRecord | None,
    pods: Sequence[PodRecord],
    ctx: CycleContext,
    *,
    detail: str = "",
) -> Change | None:
    spec = job.spec
    assert spec is not None
    code = failed.exit_code if failed is not None else None
    what = detail or (
        f"worker {failed.replica} ({failed.name}) exited with code {code}" if failed else "failed"
    )
    if code == EXIT_PREEMPTED:
        return _requeue(
            job, pods, ctx, reason="Interrupted", message=f"{what} after a checkpoint; requeued"
        )
    restarts = job.status.restarts or 0
    if code != EXIT_USAGE and restarts < spec.failure_policy.max_restarts:
        message = (
            f"{what}; restarting the whole gang from its last checkpoint "
            f"(restart {restarts + 1} of {spec.failure_policy.max_restarts})"
        )
        patch = {
            "restarts": restarts + 1,
            "message": message,
            "conditions": _conditions(
                job, ctx.now, (CONDITION_RESTARTING, True, "WorkerFailed", message)
            ),
        }
        writes = stop_pods(pods, grace_period_s=ctx.grace_period_s)
        return _change(
            job, patch, ctx, writes=writes, reason="GangRestart", message=message, warning=True
        )
    why = (
        "bad configuration (exit code 2), restarting will not help"
        if code == EXIT_USAGE
        else f"gave up after {restarts} restarts (failurePolicy.maxRestarts)"
    )
    message = f"{what}; {why}"
    patch = {
        "phase": "Failed",
        "completionTime": rfc3339(ctx.now),
        "allocatedGPUs": 0,
        **run_seconds_patch(job, ctx.now),
        "message": message,
        "conditions": _conditions(job, ctx.now, (CONDITION_SCHEDULED, False, "Failed", message)),
    }
    writes = stop_pods(pods, grace_period_s=0)
    return _change(job, patch, ctx, writes=writes, reason="Failed", message=message, warning=True)
