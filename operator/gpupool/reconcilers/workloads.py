"""TrainingJob and InferenceService: parse into the cache, wake the pool's loop on change.

Status-only updates (most of them the operator's own writes) do not wake the
loop; new objects, spec changes (``metadata.generation``) and deletions do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import kopf

from gpupool.k8s import names
from gpupool.reconcilers.runtime import HOUSEKEEPING, OperatorRuntime
from gpupool.state.parse import parse_job, parse_service


def _uid(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("uid", ""))


class _WorkloadRecord(Protocol):
    @property
    def pool(self) -> str | None: ...
    @property
    def generation(self) -> int: ...
    @property
    def deleting(self) -> bool: ...


RecordT = TypeVar("RecordT", bound=_WorkloadRecord)


def _on_workload_event(
    runtime: OperatorRuntime,
    event_type: str | None,
    body: Mapping[str, Any],
    *,
    cached: Callable[[str], RecordT | None],
    remove: Callable[[str], None],
    parse: Callable[[Mapping[str, Any]], RecordT],
    upsert: Callable[[RecordT], None],
) -> None:
    """Keep the cache current; wake the pool's loop on anything but a status-only update."""
    uid = _uid(body)
    before = cached(uid)
    if event_type == "DELETED":
        remove(uid)
        if before is not None and before.pool:
            runtime.wakeups.poke(before.pool)
        return
    record = parse(body)
    upsert(record)
    if (
        before is None
        or before.generation != record.generation
        or before.deleting != record.deleting
    ):
        if record.pool:
            runtime.wakeups.poke(record.pool)
        runtime.wakeups.poke(HOUSEKEEPING)


def on_job_event(runtime: OperatorRuntime, event_type: str | None, body: Mapping[str, Any]) -> None:
    cache = runtime.cache
    _on_workload_event(
        runtime,
        event_type,
        body,
        cached=cache.job,
        remove=cache.remove_job,
        parse=parse_job,
        upsert=cache.upsert_job,
    )


def on_service_event(
    runtime: OperatorRuntime, event_type: str | None, body: Mapping[str, Any]
) -> None:
    cache = runtime.cache
    _on_workload_event(
        runtime,
        event_type,
        body,
        cached=cache.service,
        remove=cache.remove_service,
        parse=parse_service,
        upsert=cache.upsert_service,
    )


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.event(names.GROUP, names.VERSION, names.TRAINING_JOB_PLURAL, registry=registry)
    def job_event(event: Mapping[str, Any], body: Mapping[str, Any], memo: Any, **_: Any) -> None:
        with memo.runtime.metrics.counting_errors(names.TRAINING_JOB_PLURAL):
            on_job_event(memo.runtime, event.get("type"), body)

    @kopf.on.event(names.GROUP, names.VERSION, names.INFERENCE_SERVICE_PLURAL, registry=registry)
    def service_event(
        event: Mapping[str, Any], body: Mapping[str, Any], memo: Any, **_: Any
    ) -> None:
        with memo.runtime.metrics.counting_errors(names.INFERENCE_SERVICE_PLURAL):
            on_service_event(memo.runtime, event.get("type"), body)
