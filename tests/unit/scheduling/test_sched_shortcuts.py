"""The shortcuts of ``place_pending`` decide exactly what its per-entry path decides."""

from __future__ import annotations

import random

import pytest
from sched_builders import every_decision

from gpupool.scheduling import PoolConfig, Snapshot, preemption, run_cycle
from gpupool.scheduling import cycle as cycle_module
from gpupool.sim.bench import evolve
from gpupool.sim.engine import SimConfig, Simulator
from gpupool.sim.policies import RunCyclePolicy
from gpupool.sim.synthetic import ClusterSpec, make_snapshot
from gpupool.sim.tenants import default_tenants
from gpupool.sim.trace import parse_trace


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


def _search_everything(self: object, **_: object) -> None:
    return None  # the victim search walks every time


real_search = cycle_module.find_victims


def _count_answers(counter: list[int]) -> object:
    real = preemption.VictimIndex.visits_without_victim

    def counted(self: preemption.VictimIndex, **kwargs: float) -> int | None:
        answer = real(self, **kwargs)
        counter.append(answer is not None)
        return answer

    return counted


@pytest.mark.parametrize("seed", [5, 17])
def test_searches_answered_without_a_walk_decide_as_the_walk(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Snapshots with three tiers (lower tiers hold GPUs, so the walk is taken): the
    decisions and the visits left are the same."""
    config = PoolConfig()
    snapshot: Snapshot = make_snapshot(
        ClusterSpec(nodes=120, gpus_per_node=8, running=1200, pending=800, seed=seed)
    )
    rng = random.Random(seed)
    answered: list[int] = []
    monkeypatch.setattr(preemption.VictimIndex, "visits_without_victim", _count_answers(answered))
    decisions = run_cycle(snapshot, config)
    for serial in range(4):
        snapshot = evolve(snapshot, decisions, interval_s=5.0, churn=0.005, rng=rng, serial=serial)
        outcomes = []
        for shortcut in (True, False):
            with monkeypatch.context() as patch:
                if not shortcut:
                    patch.setattr(
                        preemption.VictimIndex, "visits_without_victim", _search_everything
                    )
                cycle = cycle_module._Cycle(snapshot, config)
                decided = cycle.run()
                cycle.kept.give_back(cycle.state)
                left = None if cycle.victim_index is None else cycle.victim_index.visits_left
                outcomes.append((every_decision(decided), left))
        assert outcomes[0] == outcomes[1]
        decisions = decided
    assert answered  # asked, and answered "may find one" (see the replay test below)


def test_a_replay_with_searches_answered_without_a_walk_is_the_same_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One tier and many borrowers outbidding each other: most searches are answered."""
    text = "job_id,submit_s,duration_s,gpus,tenant,priority,kind\n" + "".join(
        f"j{i:03d},{50 * i},{[300, 5000, 900, 20000][i % 4]},{[1, 2, 4, 8][i % 4]},"
        f"t{i % 3},normal,training\n"
        for i in range(120)
    )
    jobs = parse_trace(text.splitlines(True)).jobs
    tenants = default_tenants({job.tenant for job in jobs}, total_gpus=16)
    answered: list[int] = []
    runs = []
    visits: list[list[int]] = []
    for shortcut in (True, False):
        left: list[int] = []
        visits.append(left)

        def search(*args: object, left: list[int] = left, **kwargs: object) -> object:
            found = real_search(*args, **kwargs)
            left.append(args[1].visits_left)  # type: ignore[attr-defined]
            return found

        with monkeypatch.context() as patch:
            patch.setattr(cycle_module, "find_victims", search)
            patch.setattr(
                preemption.VictimIndex,
                "visits_without_victim",
                _count_answers(answered) if shortcut else _search_everything,
            )
            simulator = Simulator(
                jobs,
                policy=RunCyclePolicy(PoolConfig()),
                tenants=tenants,
                config=SimConfig(nodes=2, gpus_per_node=8),
            )
            outcome = simulator.run()
        runs.append(
            [(r.job.job_id, r.first_start, r.finish, r.preemptions) for r in outcome.records]
        )
    assert runs[0] == runs[1]
    assert visits[0] == visits[1]  # the visit budget is spent alike
    assert sum(answered) > 10
    assert sum(preemptions for *_, preemptions in runs[0]) > 0
