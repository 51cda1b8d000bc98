"""The path the operator takes: parse spec dicts, build status patches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from gpupool.api import (
    Condition,
    GPUPoolSpec,
    InferenceServiceSpec,
    ReplicaPlacement,
    TrainingJobSpec,
    TrainingJobStatus,
    timestamp,
)
from gpupool.api.base import to_camel

TEMPLATE: dict[str, Any] = {"spec": {"containers": [{"name": "w", "image": "img"}]}}


@pytest.mark.parametrize(
    ("name", "alias"),
    [
        ("pool", "pool"),
        ("gpus_per_replica", "gpusPerReplica"),
        ("guaranteed_gpus", "guaranteedGPUs"),
        ("max_price_per_gpu_hour", "maxPricePerGPUHour"),
        ("gpu_memory_mib", "gpuMemoryMiB"),
        ("max_temperature_c", "maxTemperatureC"),
        ("ttl_seconds_after_finished", "ttlSecondsAfterFinished"),
    ],
)
def test_wire_names_are_camel_case_with_kubernetes_acronyms(name: str, alias: str) -> None:
    assert to_camel(name) == alias


def test_spec_parses_from_an_api_body_and_fills_defaults() -> None:
    spec = TrainingJobSpec.model_validate(
        {"pool": "a100", "replicas": 4, "gpusPerReplica": 8, "template": TEMPLATE}
    )
    assert (spec.pool, spec.replicas, spec.gpus_per_replica) == ("a100", 4, 8)
    assert spec.priority_class == "normal"
    assert spec.torch.nproc_per_node == "auto"
    assert spec.torch.port == 29500
    assert spec.torch.backend == "auto"  # nccl on GPUs, gloo without: never exits 2 for it
    assert spec.failure_policy.max_restarts == 3
    assert spec.elastic is None
    assert spec.template == TEMPLATE


def test_models_are_built_by_python_name_too() -> None:
    spec = InferenceServiceSpec(pool="a100", gpus_per_replica=0.5, gpu_memory_mib=8000, template={})
    assert spec.model_dump(exclude_unset=True) == {
        "pool": "a100",
        "gpusPerReplica": 0.5,
        "gpuMemoryMiB": 8000,
        "template": {},
    }


def test_unknown_spec_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="gpusPerReplicas"):
        TrainingJobSpec.model_validate({"pool": "a", "template": {}, "gpusPerReplicas": 2})


def test_pool_defaults_match_the_design() -> None:
    spec = GPUPoolSpec.model_validate(
        {"nodeSelector": {"matchLabels": {"gpupool.io/pool": "a100"}}}
    )
    assert spec.gpu_resource_name == "nvidia.com/gpu"
    assert spec.tenants == []
    assert spec.auction.interval_seconds == 5
    assert spec.preemption.grace_period_seconds == 120
    assert spec.health.evict_on_xid == [48, 63, 64, 74, 79]


def test_mutable_defaults_are_not_shared_between_objects() -> None:
    first = GPUPoolSpec.model_validate({"nodeSelector": {}})
    first.health.evict_on_xid.append(13)
    second = GPUPoolSpec.model_validate({"nodeSelector": {}})
    assert second.health.evict_on_xid == [48, 63, 64, 74, 79]


def test_status_patch_holds_only_what_was_set_in_json_ready_camel_case() -> None:
    started = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    status = TrainingJobStatus(
        phase="Running",
        allocated_gpus=16,
        placement=[ReplicaPlacement(replica=0, node="gpu-node-000", gpus=[0, 1])],
        start_time=started,
        conditions=[
            Condition(type="Ready", status="True", reason="Placed", last_transition_time=started)
        ],
    )

    patch = status.model_dump(exclude_none=True)

    assert patch == {
        "phase": "Running",
        "allocatedGPUs": 16,
        "placement": [{"replica": 0, "node": "gpu-node-000", "gpus": [0, 1]}],
        "startTime": "2026-03-01T12:30:15Z",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": "2026-03-01T12:30:15Z",
                "reason": "Placed",
                "message": "",
            }
        ],
    }
    assert json.loads(json.dumps(patch)) == patch
    assert TrainingJobStatus.model_validate(patch).start_time == timestamp(started)


def test_timestamps_are_written_in_utc() -> None:
    local = datetime(2026, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    status = TrainingJobStatus(start_time=local)
    assert status.model_dump(exclude_none=True) == {"startTime": "2026-03-01T12:00:00Z"}


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        TrainingJobStatus.model_validate({"startTime": "2026-03-01T12:00:00"})


def test_condition_reason_must_be_camel_case() -> None:
    with pytest.raises(ValidationError, match="reason"):
        Condition.model_validate(
            {
                "type": "Ready",
                "status": "True",
                "reason": "not placed",
                "lastTransitionTime": "2026-03-01T12:00:00Z",
            }
        )


def _isvc(**fields: Any) -> dict[str, Any]:
    return {"pool": "a100", "template": {}, **fields}


# Python twins of the InferenceService CEL rules: fields -> accepted?
ISVC_CASES = [
    ({"replicas": 0, "minReplicas": 0}, True),
    ({"replicas": 0}, False),  # minReplicas defaults to 1
    ({"replicas": 8, "minReplicas": 1, "maxReplicas": 8}, True),
    ({"replicas": 9, "maxReplicas": 8}, False),
    ({"gpusPerReplica": 0.5, "gpuMemoryMiB": 12000}, True),
    ({"gpusPerReplica": 0.5}, False),
    ({"gpusPerReplica": 2}, True),
    ({"gpusPerReplica": 2.5, "gpuMemoryMiB": 12000}, False),
    ({"minReplicas": 0, "autoscaling": {"target": 4, "scaleToZeroAfterSeconds": 60}}, True),
    ({"autoscaling": {"target": 4, "scaleToZeroAfterSeconds": 60}}, False),
    ({"autoscaling": {"metric": "gpuUtilization", "target": 80}}, True),
    ({"autoscaling": {"metric": "rps", "target": 500}}, True),
]


@pytest.mark.parametrize(("fields", "accepted"), ISVC_CASES)
def test_inference_service_cross_field_rules(fields: dict[str, Any], accepted: bool) -> None:
    if accepted:
        InferenceServiceSpec.model_validate(_isvc(**fields))
    else:
        with pytest.raises(ValidationError):
            InferenceServiceSpec.model_validate(_isvc(**fields))


@pytest.mark.parametrize(
    ("replicas", "min_replicas", "accepted"), [(4, 2, True), (4, 4, True), (4, 5, False)]
)
def test_elastic_minimum_within_replicas(replicas: int, min_replicas: int, accepted: bool) -> None:
    body = {
        "pool": "a",
        "template": {},
        "replicas": replicas,
        "elastic": {"minReplicas": min_replicas},
    }
    if accepted:
        assert TrainingJobSpec.model_validate(body).elastic is not None
    else:
        with pytest.raises(ValidationError, match=r"elastic\.minReplicas must not exceed replicas"):
            TrainingJobSpec.model_validate(body)
