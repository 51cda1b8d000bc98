"""Every example parses with the models and round-trips; every invalid one is refused.

The API server's verdicts on the same files are checked in
tests/integration/test_crds.py; here the models' Python twins of the schema and
CEL rules must agree without a cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.unit.api.example_files import (
    MODEL_OF_KIND,
    gpupool_objects,
    invalid_files,
    valid_files,
)


def test_there_is_an_example_of_every_kind() -> None:
    kinds = {obj["kind"] for path in valid_files() for obj in gpupool_objects(path)}
    assert kinds == set(MODEL_OF_KIND)


def test_the_pool_example_has_the_three_teams() -> None:
    (pool,) = [
        obj for path in valid_files() for obj in gpupool_objects(path) if obj["kind"] == "GPUPool"
    ]
    assert pool["metadata"]["name"] == "a100"
    assert [tenant["namespace"] for tenant in pool["spec"]["tenants"]] == [
        "team-a",
        "team-b",
        "team-c",
    ]


def test_there_is_an_elastic_training_job() -> None:
    jobs = [
        obj
        for path in valid_files()
        for obj in gpupool_objects(path)
        if obj["kind"] == "TrainingJob"
    ]
    assert any("elastic" in job["spec"] for job in jobs)
    assert any("elastic" not in job["spec"] for job in jobs)


@pytest.mark.parametrize("path", valid_files(), ids=lambda path: path.name)
def test_example_round_trips_through_its_model(path: Path) -> None:
    for obj in gpupool_objects(path):
        model = MODEL_OF_KIND[obj["kind"]].model_validate(obj)
        assert model.model_dump(exclude_unset=True) == obj


# file -> what the model's error must say (pydantic's words for schema bounds,
# the CEL rule's message for cross-field rules)
MODEL_REJECTIONS = {
    "gpupool-duplicate-tenant.yaml": "tenant namespaces must be unique",
    "gpupool-guaranteed-above-max.yaml": "guaranteedGPUs must not exceed maxGPUs",
    "gpupool-selector-values-with-exists.yaml": "values must be non-empty for In and NotIn",
    "inferenceservice-fraction-above-one.yaml": "gpusPerReplica of 1 or more must be a whole",
    "inferenceservice-fraction-without-memory.yaml": "requires gpuMemoryMiB",
    "inferenceservice-min-above-replicas.yaml": "minReplicas must not exceed replicas",
    "inferenceservice-replicas-above-max.yaml": "replicas must not exceed maxReplicas",
    "inferenceservice-scale-to-zero-with-min.yaml": "scaleToZeroAfterSeconds requires minReplicas",
    "inferenceservice-utilization-above-100.yaml": "must not exceed 100",
    "inferenceservice-zero-gpus.yaml": "spec.gpusPerReplica\n  Input should be greater than 0",
    "trainingjob-bad-nproc.yaml": "spec.torch.nprocPerNode",
    "trainingjob-elastic-min-above-replicas.yaml": "elastic.minReplicas must not exceed replicas",
    "trainingjob-missing-pool.yaml": "spec.pool\n  Field required",
    "trainingjob-negative-gpus.yaml": (
        "spec.gpusPerReplica\n  Input should be greater than or equal to 1"
    ),
    "trainingjob-too-many-gpus-per-replica.yaml": (
        "spec.gpusPerReplica\n  Input should be less than or equal to 16"
    ),
    "trainingjob-unknown-priority.yaml": (
        "spec.priorityClass\n  Input should be 'high', 'normal' or 'low'"
    ),
}


def test_the_rejection_table_covers_every_invalid_example() -> None:
    assert sorted(MODEL_REJECTIONS) == [path.name for path in invalid_files()]


@pytest.mark.parametrize("path", invalid_files(), ids=lambda path: path.name)
def test_invalid_example_is_refused_by_its_model(path: Path) -> None:
    (obj,) = gpupool_objects(path)
    with pytest.raises(ValidationError) as refused:
        MODEL_OF_KIND[obj["kind"]].model_validate(obj)
    assert MODEL_REJECTIONS[path.name] in str(refused.value)
