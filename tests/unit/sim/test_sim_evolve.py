"""``evolved`` copies a workload exactly as ``dataclasses.replace`` does."""

from __future__ import annotations

import dataclasses

import pytest

from gpupool.scheduling.model import (
    Allocation,
    GpuShare,
    ReplicaPlacement,
    Tier,
    Workload,
    WorkloadKind,
    WorkloadUid,
)
from gpupool.sim.evolve import evolved

BASE = Workload(
    uid=WorkloadUid("u1"),
    name="job",
    tenant="team-a",
    kind=WorkloadKind.INFERENCE,
    tier=Tier.HIGH,
    replicas=3,
    min_replicas=1,
    gpus_per_replica=0,
    gpu_share=GpuShare(fraction=0.5, memory_mib=1024),
    bid_per_gpu_hour=2.5,
    submitted_at=10.0,
    queued_at=12.0,
    last_checkpoint_at=11.0,
    restarts=1,
    preemptions=2,
    attained_service_s=30.0,
    expected_duration_s=600.0,
    labels=(("a", "b"),),
)

CHANGES = [
    {},
    {
        "allocation": Allocation(
            replicas=(ReplicaPlacement(node="n1", gpu_indices=(0,)),), started_at=20.0
        )
    },
    {"preempted_at": 40.0},
    {
        "allocation": None,
        "preempted_at": None,
        "attained_service_s": 55.0,
        "restarts": 2,
        "preemptions": 3,
        "queued_at": 60.0,
    },
]


@pytest.mark.parametrize("changes", CHANGES)
def test_evolved_equals_replace_field_for_field(changes: dict[str, object]) -> None:
    expected = dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]
    copy = evolved(BASE, **changes)
    assert copy == expected
    assert copy is not BASE
    for field in dataclasses.fields(Workload):
        assert getattr(copy, field.name) is getattr(expected, field.name), field.name


def test_evolved_leaves_the_original_alone_and_stays_frozen() -> None:
    copy = evolved(BASE, preempted_at=5.0)
    assert BASE.preempted_at is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.preempted_at = 6.0  # type: ignore[misc]


def test_evolved_rejects_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="no field 'priority'"):
        evolved(BASE, priority=3)
