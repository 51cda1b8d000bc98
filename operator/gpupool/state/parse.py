"""Raw API bodies (as kopf or a list call hands them over) to cache records.

Every function here is pure and total: a malformed object yields a record that
says what is wrong (or ``None`` for pods that are not ours), never an exception,
so one bad object can not stop the event stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from gpupool.api.inferenceservice import InferenceServiceSpec, InferenceServiceStatus
from gpupool.api.pool import GPUPoolSpec
from gpupool.api.trainingjob import TrainingJobSpec, TrainingJobStatus
from gpupool.k8s import names
from gpupool.k8s.timestamps import parse_rfc3339
from gpupool.state.records import (
    JobRecord,
    NodeRecord,
    PodPhase,
    PodRecord,
    PoolRecord,
    ServiceRecord,
    WorkloadKindName,
    WorkloadRecord,
)
from gpupool.telemetry.model import NodeTelemetry

Body = Mapping[str, Any]
RecordT = TypeVar("RecordT", bound=WorkloadRecord[Any, Any])
TelemetryParser = Callable[[Mapping[str, str]], NodeTelemetry | None]
"""Node annotations -> the agent's last report (``None`` without one); raises ValueError."""

REPORT_LAST_CHECKPOINT_TIME = "lastCheckpointTime"
"""Key of the trainer's exit report (one JSON line in the termination message; the
workloads contract's ``REPORT_LAST_CHECKPOINT_TIME``)."""


def _meta(body: Body) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = body.get("metadata") or {}
    return meta


def validation_message(error: ValidationError) -> str:
    """One line per problem: ``spec.replicas: Input should be greater than 0``."""
    parts = []
    for problem in error.errors():
        where = ".".join(str(item) for item in problem.get("loc", ()))
        parts.append(f"{where}: {problem.get('msg', '')}" if where else str(problem.get("msg")))
    return "; ".join(parts)


def parse_pool(body: Body) -> PoolRecord | str:
    """A pool record, or why the spec is unusable."""
    meta = _meta(body)
    try:
        spec = GPUPoolSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        return validation_message(error)
    credits: dict[str, float] = {}
    status: Mapping[str, Any] = body.get("status") or {}
    for tenant in status.get("tenants") or []:
        balance = tenant.get("credits")
        if isinstance(tenant.get("namespace"), str) and isinstance(balance, int | float):
            credits[tenant["namespace"]] = float(balance)
    return PoolRecord(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        generation=int(meta.get("generation") or 0),
        spec=spec,
        tenant_credits=credits,
        raw_status=status,
    )


def parse_job(body: Body) -> JobRecord:
    annotations: Mapping[str, str] = _meta(body).get("annotations") or {}
    return _parse_workload(
        body,
        JobRecord,
        TrainingJobSpec,
        TrainingJobStatus,
        expected_duration_s=_positive_float(annotations.get(names.ANNOTATION_EXPECTED_DURATION)),
    )


def parse_service(body: Body) -> ServiceRecord:
    return _parse_workload(body, ServiceRecord, InferenceServiceSpec, InferenceServiceStatus)


def _parse_workload(
    body: Body,
    record: type[RecordT],
    spec_model: type[TrainingJobSpec | InferenceServiceSpec],
    status_model: type[TrainingJobStatus | InferenceServiceStatus],
    **extra: float | None,
) -> RecordT:
    """A TrainingJob or InferenceService record; ``extra`` are the kind's own fields.

    A spec that does not validate leaves ``spec`` ``None`` and ``spec_error`` saying
    why; the status is read leniently (unknown keys dropped, an invalid one read as empty).
    """
    meta = _meta(body)
    spec: TrainingJobSpec | InferenceServiceSpec | None
    spec_error = None
    try:
        spec = spec_model.model_validate(body.get("spec") or {})
    except ValidationError as error:
        spec, spec_error = None, validation_message(error)
    raw_status: Mapping[str, Any] = body.get("status") or {}
    try:
        status = status_model.model_validate(_known(raw_status, status_model))
    except ValidationError:
        status = status_model()
    return record(
        uid=str(meta.get("uid", "")),
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        generation=int(meta.get("generation") or 0),
        created_at=parse_rfc3339(meta.get("creationTimestamp")) or 0.0,
        resource_version=resource_version(meta),
        spec=spec,
        status=status,
        raw_status=raw_status,
        spec_error=spec_error,
        deleting=meta.get("deletionTimestamp") is not None,
        **extra,
    )


def parse_node(body: Body, *, telemetry_parser: TelemetryParser | None = None) -> NodeRecord:
    meta = _meta(body)
    status: Mapping[str, Any] = body.get("status") or {}
    capacity: dict[str, int] = {}
    for resource, quantity in (status.get("allocatable") or status.get("capacity") or {}).items():
        if "/" in resource:
            try:
                capacity[resource] = int(str(quantity))
            except ValueError:
                continue
    ready = any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in status.get("conditions") or []
    )
    telemetry, telemetry_error = None, None
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    if telemetry_parser is not None and names.ANNOTATION_TELEMETRY in annotations:
        try:
            telemetry = telemetry_parser(annotations)
        except ValueError as error:
            telemetry_error = str(error)
    return NodeRecord(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        capacity=capacity,
        ready=ready,
        unschedulable=bool((body.get("spec") or {}).get("unschedulable")),
        telemetry=telemetry,
        telemetry_error=telemetry_error,
    )


def parse_pod(body: Body) -> PodRecord | None:
    """The record of one of our pods; ``None`` for anyone else's pod."""
    meta = _meta(body)
    labels: Mapping[str, str] = meta.get("labels") or {}
    if labels.get(names.LABEL_ROLE) not in (names.ROLE_WORKER, names.ROLE_INFERENCE):
        return None
    owner = _controller(meta.get("ownerReferences") or [])
    if owner is None:
        return None
    kind, owner_uid = owner
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    spec: Mapping[str, Any] = body.get("spec") or {}
    status: Mapping[str, Any] = body.get("status") or {}
    try:
        phase = PodPhase(status.get("phase") or "Pending")
    except ValueError:
        phase = PodPhase.UNKNOWN
    return PodRecord(
        uid=str(meta.get("uid", "")),
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        resource_version=resource_version(meta),
        owner_uid=owner_uid,
        owner_kind=kind,
        replica=_int(labels.get(names.LABEL_REPLICA)),
        attempt=_int(labels.get(names.LABEL_ATTEMPT)),
        node=spec.get("nodeName") or None,
        assigned_node=annotations.get(names.ANNOTATION_ASSIGNED_NODE) or None,
        gpu_indices=parse_gpu_indices(annotations.get(names.ANNOTATION_GPU_INDICES)),
        phase=phase,
        ready=any(
            condition.get("type") == "Ready" and condition.get("status") == "True"
            for condition in status.get("conditions") or []
        ),
        deleting=meta.get("deletionTimestamp") is not None,
        exit_code=_exit_code(status) if phase in (PodPhase.SUCCEEDED, PodPhase.FAILED) else None,
        started_at=parse_rfc3339(status.get("startTime")),
        checkpoint_at=_reported_checkpoint(status)
        if labels.get(names.LABEL_ROLE) == names.ROLE_WORKER
        else None,
    )


def resource_version(meta: Mapping[str, Any]) -> int:
    """``metadata.resourceVersion`` as a number (etcd's revision), 0 when not numeric.

    Used only to drop watch events older than a body the operator already holds
    from its own write (the API server's answer arrives before the watch event).
    """
    try:
        return int(str(meta.get("resourceVersion") or 0))
    except ValueError:
        return 0


def parse_gpu_indices(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        return ()


def _controller(refs: Sequence[Mapping[str, Any]]) -> tuple[WorkloadKindName, str] | None:
    for ref in refs:
        if not ref.get("controller") or not str(ref.get("apiVersion", "")).startswith(
            f"{names.GROUP}/"
        ):
            continue
        try:
            return WorkloadKindName(str(ref.get("kind"))), str(ref.get("uid", ""))
        except ValueError:
            return None
    return None


def _exit_code(status: Mapping[str, Any]) -> int | None:
    """The first non-zero exit code among terminated containers, else 0 (or ``None``)."""
    codes = [
        int(state["terminated"].get("exitCode", 0))
        for container in status.get("containerStatuses") or []
        if isinstance(state := container.get("state"), Mapping) and state.get("terminated")
    ]
    if not codes:
        return None
    return next((code for code in codes if code != 0), 0)


def checkpoint_time_of(message: object) -> float | None:
    """``lastCheckpointTime`` of a trainer's exit report, or ``None``.

    The report is one JSON line; with ``FallbackToLogsOnError`` a failed container
    without one has its last log lines here instead, which are not a report.
    """
    if not isinstance(message, str):
        return None
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return None
    try:
        report = json.loads(lines[-1])
    except ValueError:
        return None
    if not isinstance(report, dict):
        return None
    when = report.get(REPORT_LAST_CHECKPOINT_TIME)
    return parse_rfc3339(when) if isinstance(when, str) else None


def _reported_checkpoint(status: Mapping[str, Any]) -> float | None:
    """The newest checkpoint time among the terminated containers' messages."""
    times = [
        when
        for container in status.get("containerStatuses") or []
        if isinstance(state := container.get("state"), Mapping)
        and isinstance(terminated := state.get("terminated"), Mapping)
        and (when := checkpoint_time_of(terminated.get("message"))) is not None
    ]
    return max(times, default=None)


def _known(raw: Mapping[str, Any], model: type[TrainingJobStatus | InferenceServiceStatus]) -> Body:
    """``raw`` without keys the model does not know (other writers, older versions)."""
    known = {info.alias or name for name, info in model.model_fields.items()} | set(
        model.model_fields
    )
    return {key: value for key, value in raw.items() if key in known}


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _positive_float(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None
