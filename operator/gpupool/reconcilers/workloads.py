"""TrainingJob and InferenceService: parse into the cache, wake the pool's loop on change.

Status-only updates (most of them the operator's own writes) do not wake the
loop; new objects, spec changes (``metadata.generation``) and deletions do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from gpupool.k8s import names
from gpupool.reconcilers.runtime import HOUSEKEEPING, OperatorRuntime
from gpupool.state.parse import parse_job, parse_service


def _uid(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("uid", ""))


def on_job_event(runtime: OperatorRuntime, event_type: str | None, body: Mapping[str, Any]) -> None:
    cache = runtime.cache
    uid = _uid(body)
    before = cache.job(uid)
    if event_type == "DELETED":
        cache.remove_job(uid)
        if before is not None and before.pool:
            runtime.wakeups.poke(before.pool)
        return
    record = parse_job(body)
    cache.upsert_job(record)
    if (
        before is None
        or before.generation != record.generation
        or before.deleting != record.deleting
    ):
        if record.pool:
            runtime.wakeups.poke(record.pool)
        runtime.wakeups.poke(HOUSEKEEPING)


def on_service_event(
    runtime: OperatorRuntime, event_type: str | None, body: Mapping[str, Any]
) -> None:
    cache = runtime.cache
    uid = _uid(body)
    before = cache.service(uid)
    if event_type == "DELETED":
        cache.remove_service(uid)
        if before is not None and before.pool:
            runtime.wakeups.poke(before.pool)
        return
    record = parse_service(body)
    cache.upsert_service(record)
    if (
        before is None
        or before.generation != record.generation
        or before.deleting != record.deleting
    ):
        if record.pool:
            runtime.wakeups.poke(record.pool)
        runtime.wakeups.poke(HOUSEKEEPING)


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
