"""Workloads that name a GPUPool that does not exist: a clear condition and one Event (pure).

They are never scheduled (no pool loop sees them) and never retried in a storm:
the condition is written once, and again only if the message changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gpupool.k8s import names
from gpupool.k8s.conditions import find_condition, set_condition
from gpupool.k8s.events import EventType, event
from gpupool.loop.actions import Change
from gpupool.loop.status import minimal_patch, patched_job, patched_service
from gpupool.state.records import JobRecord, ServiceRecord
from gpupool.state.stages import CONDITION_ADMITTED, conditions_of

REASON = "UnknownPool"


def orphan_changes(
    workloads: Iterable[JobRecord | ServiceRecord],
    *,
    pool_exists: Callable[[str], bool],
    now: float,
    reporting_instance: str,
) -> list[Change]:
    changes: list[Change] = []
    for record in workloads:
        pool = record.pool
        if pool is None or record.deleting or pool_exists(pool):
            continue
        message = f"GPUPool {pool} does not exist; the workload waits until it is created"
        raw = record.raw_status
        current = find_condition(conditions_of(raw), CONDITION_ADMITTED)
        if current is not None and current["reason"] == REASON and current["message"] == message:
            continue
        patch: dict[str, object] = {
            "message": message,
            "conditions": set_condition(
                conditions_of(raw),
                type_=CONDITION_ADMITTED,
                status=False,
                reason=REASON,
                message=message,
                now=now,
            ),
        }
        if isinstance(record, JobRecord):
            patch["phase"] = record.status.phase or "Queued"
        minimal = minimal_patch(raw, patch)
        is_job = isinstance(record, JobRecord)
        changes.append(
            Change(
                target=record.ref,
                plural=names.TRAINING_JOB_PLURAL if is_job else names.INFERENCE_SERVICE_PLURAL,
                status_patch=minimal,
                assumed=patched_job(record, minimal)
                if isinstance(record, JobRecord)
                else patched_service(record, minimal),
                events=(
                    event(
                        regarding=record.ref,
                        reason=REASON,
                        message=message,
                        event_type=EventType.WARNING,
                        now=now,
                        reporting_instance=reporting_instance,
                    ),
                ),
            )
        )
    return changes
