"""Where a workload is in its life, read from its persisted status (no memory needed).

The status the operator writes is the source of truth a restarted operator
resumes from:

- ``QUEUED``: waits for the core to place it (no pods);
- ``PLACED``: ``status.placement`` holds GPUs (phase Scheduled/Running; for an
  InferenceService a ``Scheduled=True`` condition); its pods are created, bound,
  running;
- ``RELEASING``: told to stop (preempted, or a failed gang restarting) and still
  holding GPUs until its pods are gone;
- ``FINISHED``: Succeeded or Failed (training only).

The launch attempt (``GPUPOOL_RESTART_COUNT``, the pod-name infix) is
``restarts + preemptions``: both are counted when a release starts, so pods of
the next launch never share a name with pods still terminating.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from gpupool.k8s.conditions import find_condition
from gpupool.k8s.timestamps import parse_rfc3339
from gpupool.state.records import JobRecord, ServiceRecord

CONDITION_ADMITTED = "Admitted"
"""False when the job can never run as is (unknown pool, namespace not a tenant, bad spec)."""
CONDITION_SCHEDULED = "Scheduled"
"""True while the workload holds GPUs; its transition time is when it was placed."""
CONDITION_PREEMPTING = "Preempting"
CONDITION_RESTARTING = "Restarting"
CONDITION_BID_CAPPED = "BidCapped"
CONDITION_READY = "Ready"
REASON_UNHEALTHY_GPU = "UnhealthyGPU"
"""``Preempting`` reason of a workload evicted from a GPU that failed: for a job, a
whole-gang restart (counted in ``restarts``), not a preemption."""


class Stage(enum.Enum):
    QUEUED = "queued"
    PLACED = "placed"
    RELEASING = "releasing"
    FINISHED = "finished"


def conditions_of(raw_status: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    conditions: Sequence[Mapping[str, Any]] = raw_status.get("conditions") or ()
    return conditions


def condition_is_true(raw_status: Mapping[str, Any], type_: str) -> bool:
    found = find_condition(conditions_of(raw_status), type_)
    return found is not None and found["status"] == "True"


def condition_since(raw_status: Mapping[str, Any], type_: str) -> float | None:
    """When a condition last changed status (seconds), if it is present."""
    found = find_condition(conditions_of(raw_status), type_)
    return None if found is None else parse_rfc3339(found["lastTransitionTime"])


def true_since(raw_status: Mapping[str, Any], type_: str) -> float | None:
    """When a condition became True (seconds); None when it is absent or not True."""
    found = find_condition(conditions_of(raw_status), type_)
    if found is None or found["status"] != "True":
        return None
    return parse_rfc3339(found["lastTransitionTime"])


def job_stage(job: JobRecord) -> Stage:
    phase = job.status.phase
    if phase in ("Succeeded", "Failed"):
        return Stage.FINISHED
    if phase == "Preempting" or condition_is_true(job.raw_status, CONDITION_RESTARTING):
        return Stage.RELEASING
    if phase in ("Scheduled", "Running") and job.status.placement:
        return Stage.PLACED
    return Stage.QUEUED


def service_stage(service: ServiceRecord) -> Stage:
    if condition_is_true(service.raw_status, CONDITION_PREEMPTING):
        return Stage.RELEASING
    if condition_is_true(service.raw_status, CONDITION_SCHEDULED) and service.status.placement:
        return Stage.PLACED
    return Stage.QUEUED


def job_attempt(job: JobRecord) -> int:
    return (job.status.restarts or 0) + (job.status.preemptions or 0)
