"""The shortcuts of ``place_pending`` decide exactly what its per-entry path decides."""

from __future__ import annotations

import random

import pytest
from sched_builders import every_decision

from gpupool.scheduling import PoolConfig, Snapshot, run_cycle
from gpupool.scheduling import cycle as cycle_module
from gpupool.sim.bench import evolve
from gpupool.sim.synthetic import ClusterSpec, make_snapshot


def _no_doomed_runs(self: object, ordered: object, start: int, *rest: object) -> int:
    return start  # every entry goes through the per-entry path


@pytest.mark.parametrize("seed", [3, 11])
def test_runs_of_failed_shapes_lose_as_the_per_entry_path_decides(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = PoolConfig()
    snapshot: Snapshot = make_snapshot(
        ClusterSpec(nodes=200, gpus_per_node=8, running=1500, pending=1000, seed=seed)
    )
    rng = random.Random(seed)
    fired = 0
    decisions = run_cycle(snapshot, config)
    for serial in range(4):
        snapshot = evolve(snapshot, decisions, interval_s=5.0, churn=0.005, rng=rng, serial=serial)
        cycle = cycle_module._Cycle(snapshot, config)
        decisions = cycle.run()
        fired += len(cycle.doomed)
        with monkeypatch.context() as patch:
            patch.setattr(cycle_module._Cycle, "_first_live", _no_doomed_runs)
            reference = run_cycle(snapshot, config)
        assert every_decision(decisions) == every_decision(reference)
    assert fired > 0
