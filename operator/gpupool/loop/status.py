"""Status patches: JSON merge patch (RFC 7386), applied to records for assume, and diffed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from gpupool.api.inferenceservice import InferenceServiceStatus
from gpupool.api.trainingjob import TrainingJobStatus
from gpupool.state.records import JobRecord, ServiceRecord


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``target`` with ``patch`` applied: ``None`` deletes, mappings merge, the rest replaces."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = value
    return result


def needs_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """True when applying ``patch`` would change ``current``."""
    return merge_patch(current, patch) != dict(current)


def minimal_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``patch`` that change something (``{}`` when none does)."""
    return {
        key: value
        for key, value in patch.items()
        if (value is None and key in current) or (value is not None and current.get(key) != value)
    }


def patched_job(record: JobRecord, patch: Mapping[str, Any]) -> JobRecord:
    raw = merge_patch(record.raw_status, patch)
    try:
        status = TrainingJobStatus.model_validate(_known(raw, TrainingJobStatus))
    except ValidationError:
        status = record.status
    return replace(record, raw_status=raw, status=status)


def patched_service(record: ServiceRecord, patch: Mapping[str, Any]) -> ServiceRecord:
    raw = merge_patch(record.raw_status, patch)
    try:
        status = InferenceServiceStatus.model_validate(_known(raw, InferenceServiceStatus))
    except ValidationError:
        status = record.status
    return replace(record, raw_status=raw, status=status)


def _known(
    raw: Mapping[str, Any], model: type[TrainingJobStatus | InferenceServiceStatus]
) -> dict[str, Any]:
    known = {info.alias or name for name, info in model.model_fields.items()}
    return {key: value for key, value in raw.items() if key in known}
