"""The workload index follows a snapshot's changes (:mod:`gpupool.scheduling.workload_index`):
applying them decides exactly what indexing every workload again decides, and a snapshot
whose changes do not describe its workloads is indexed whole."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sched_builders import every_decision

from gpupool.scheduling import (
    Decisions,
    PoolConfig,
    Snapshot,
    Workload,
    WorkloadChanges,
    WorkloadUid,
    run_cycle,
)
from gpupool.scheduling import cycle as cycle_module
from gpupool.scheduling.workload_index import WorkloadIndex
from gpupool.sim.bench import evolve
from gpupool.sim.synthetic import ClusterSpec, make_snapshot


@pytest.fixture
def rebuilds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the snapshots indexed whole (one entry per rebuild: the workload count)."""
    counted: list[int] = []
    rebuild = WorkloadIndex._rebuild

    def counting(self: WorkloadIndex, workloads: dict[WorkloadUid, Workload], *a: object) -> None:
        counted.append(len(workloads))
        rebuild(self, workloads, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(WorkloadIndex, "_rebuild", counting)
    cycle_module.forget_carried_facts()
    yield counted
    cycle_module.forget_carried_facts()


def _cold(snapshot: Snapshot, config: PoolConfig) -> tuple[object, ...]:
    cycle_module.forget_carried_facts()
    return every_decision(run_cycle(snapshot, config))


def _stirred(snapshot: Snapshot, rng: random.Random, serial: int) -> Snapshot:
    """More changes than a replay makes, all listed: pending workloads given a new object
    (an explicit bid), running ones checkpointed, terminating ones requeued at once,
    workloads removed, and UIDs listed although unchanged."""
    changes = snapshot.changes
    assert changes is not None
    workloads = dict(snapshot.workloads)
    changed = dict.fromkeys(changes.uids)
    for uid, workload in rng.sample(sorted(workloads.items()), k=min(40, len(workloads))):
        roll = rng.random()
        allocation = workload.allocation
        if roll < 0.15:
            del workloads[uid]
        elif allocation is None and roll < 0.5:
            workloads[uid] = replace(workload, bid_per_gpu_hour=rng.choice([None, 0.5, 9.0]))
        elif allocation is not None and workload.preempted_at is not None and roll < 0.7:
            workloads[uid] = replace(workload, allocation=None, preempted_at=None)
        elif allocation is not None and roll < 0.85:
            workloads[uid] = replace(workload, last_checkpoint_at=snapshot.now)
        changed[uid] = None  # also listed when left as it was
    for index in range(rng.randint(0, 3)):
        template = rng.choice(list(snapshot.workloads.values()))
        uid = WorkloadUid(f"stirred-{serial}-{index}")
        workloads[uid] = replace(template, uid=uid, name=uid, allocation=None, preempted_at=None)
        changed[uid] = None
    return replace(
        snapshot,
        workloads=workloads,
        changes=WorkloadChanges(since=changes.since, workloads=workloads, uids=tuple(changed)),
    )


@pytest.mark.parametrize("seed", [2, 9])
def test_applied_changes_decide_what_a_whole_index_decides(seed: int, rebuilds: list[int]) -> None:
    config = PoolConfig()
    rng = random.Random(seed)
    snapshot: Snapshot = make_snapshot(
        ClusterSpec(nodes=30, gpus_per_node=8, running=200, pending=150, seed=seed)
    )
    decisions: Decisions = run_cycle(snapshot, config)
    for serial in range(12):
        snapshot = evolve(snapshot, decisions, interval_s=90.0, churn=0.05, rng=rng, serial=serial)
        if serial % 2:
            snapshot = _stirred(snapshot, rng, serial)
        cycle_module.forget_carried_facts()
        expected = every_decision(run_cycle(snapshot, config))
        # Warm: the index holds the previous snapshot (the cycle above is run again from
        # the previous snapshot's index, kept by indexing that snapshot once more).
        previous = snapshot.changes.since if snapshot.changes else None
        assert previous is not None
        rebuilds.clear()
        cycle_module.forget_carried_facts()
        run_cycle(replace(snapshot, workloads=previous, changes=None), config)
        decisions = run_cycle(snapshot, config)
        assert len(rebuilds) == 1  # the previous snapshot only: this one was applied
        assert every_decision(decisions) == expected


def test_changes_run_from_cycle_to_cycle_without_indexing_whole(rebuilds: list[int]) -> None:
    config = PoolConfig()
    rng = random.Random(4)
    snapshot: Snapshot = make_snapshot(
        ClusterSpec(nodes=20, gpus_per_node=8, running=120, pending=90, seed=4)
    )
    decisions = run_cycle(snapshot, config)
    warm = []
    snapshots = []
    for serial in range(15):
        snapshot = evolve(snapshot, decisions, interval_s=60.0, churn=0.08, rng=rng, serial=serial)
        snapshots.append(snapshot)
        decisions = run_cycle(snapshot, config)
        warm.append(every_decision(decisions))
    assert len(rebuilds) == 1  # the first snapshot
    assert warm == [_cold(s, config) for s in snapshots]


def test_changes_that_do_not_describe_the_workloads_are_ignored(rebuilds: list[int]) -> None:
    config = PoolConfig()
    rng = random.Random(6)
    first: Snapshot = make_snapshot(
        ClusterSpec(nodes=10, gpus_per_node=8, running=60, pending=50, seed=6)
    )
    second = evolve(first, run_cycle(first, config), interval_s=60.0, churn=0.1, rng=rng, serial=0)
    assert second.changes is not None
    # Other workloads given with the same changes (dataclasses.replace): a pending
    # workload replaced that the changes do not list.
    workloads = dict(second.workloads)
    uid, workload = next((u, w) for u, w in workloads.items() if w.allocation is None)
    workloads[uid] = replace(workload, bid_per_gpu_hour=50.0)
    other = replace(second, workloads=workloads)
    # Changes that leave out a workload added: the count does not add up.
    added = dict(second.workloads)
    added[WorkloadUid("unlisted")] = replace(workload, uid=WorkloadUid("unlisted"))
    unlisted = replace(
        second,
        workloads=added,
        changes=WorkloadChanges(since=first.workloads, workloads=added, uids=second.changes.uids),
    )
    for snapshot in (other, unlisted):
        expected = _cold(snapshot, config)
        rebuilds.clear()
        run_cycle(first, config)
        assert every_decision(run_cycle(snapshot, config)) == expected
        assert len(rebuilds) == 2  # the first snapshot, and this one again as a whole
