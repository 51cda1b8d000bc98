"""How often ranks agree on preemption and time-based checkpoints (fake clock, one rank)."""

from __future__ import annotations

from gpupool_workloads.trainer.control import ControlSchedule
from gpupool_workloads.trainer.distributed import Collectives, ProcessPlace


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingCollectives(Collectives):
    """A single process that records every agreement it is asked for."""

    def __init__(self, *, peer_preempted_at: int | None = None) -> None:
        super().__init__(ProcessPlace(rank=0, local_rank=0, world_size=1, node_rank=0), "gloo", 1)
        self.synced_at: list[int] = []
        self.step = 0
        self.peer_preempted_at = peer_preempted_at

    def agree(
        self, *, preempt: bool, checkpoint_due: bool, steps_to_next_sync: int
    ) -> tuple[bool, bool, int]:
        self.synced_at.append(self.step)
        peer = self.peer_preempted_at is not None and self.step >= self.peer_preempted_at
        return preempt or peer, checkpoint_due, steps_to_next_sync


def drive(
    schedule: ControlSchedule,
    collectives: RecordingCollectives,
    clock: FakeClock,
    *,
    steps: int,
    seconds_per_step: float,
    preempt_at: int | None = None,
) -> list[int]:
    """Run ``steps`` boundaries; returns the steps at which a stop or checkpoint was decided."""
    decided = []
    for step in range(steps):
        collectives.step = step
        decision = schedule.at_boundary(
            step, preempt_requested=preempt_at is not None and step >= preempt_at
        )
        if decision.preempt or decision.checkpoint_due:
            decided.append(step)
            if decision.checkpoint_due:
                schedule.checkpoint_taken()
        clock.now += seconds_per_step
    return decided


def test_fast_steps_sync_about_every_period() -> None:
    clock, collectives = FakeClock(), RecordingCollectives()
    schedule = ControlSchedule(
        collectives, checkpoint_every_seconds=3600, clock=clock, first_step=0, period_seconds=0.2
    )
    drive(schedule, collectives, clock, steps=1000, seconds_per_step=0.01)
    assert collectives.synced_at[:3] == [0, 1, 21]  # then every 0.2 s / 0.01 s = 20 steps
    assert len(collectives.synced_at) == 2 + (1000 - 21 + 19) // 20


def test_slow_steps_sync_at_every_step() -> None:
    clock, collectives = FakeClock(), RecordingCollectives()
    schedule = ControlSchedule(
        collectives, checkpoint_every_seconds=3600, clock=clock, first_step=5, period_seconds=0.2
    )
    for step in range(5, 15):
        collectives.step = step
        schedule.at_boundary(step, preempt_requested=False)
        clock.now += 0.5
    assert collectives.synced_at == list(range(5, 15))


def test_a_signal_is_acted_on_at_the_next_sync() -> None:
    clock, collectives = FakeClock(), RecordingCollectives()
    schedule = ControlSchedule(
        collectives, checkpoint_every_seconds=3600, clock=clock, first_step=0, period_seconds=0.2
    )
    decided = drive(schedule, collectives, clock, steps=100, seconds_per_step=0.01, preempt_at=30)
    assert decided[0] == 41  # syncs at 0, 1, 21, 41: within 0.2 s of the signal


def test_a_peer_s_signal_stops_this_rank_too() -> None:
    clock, collectives = FakeClock(), RecordingCollectives(peer_preempted_at=50)
    schedule = ControlSchedule(
        collectives, checkpoint_every_seconds=3600, clock=clock, first_step=0, period_seconds=0.2
    )
    assert drive(schedule, collectives, clock, steps=100, seconds_per_step=0.01)[0] == 61


def test_time_based_checkpoints_follow_rank_zero_s_clock() -> None:
    clock, collectives = FakeClock(), RecordingCollectives()
    schedule = ControlSchedule(
        collectives, checkpoint_every_seconds=0.99, clock=clock, first_step=0, period_seconds=0.2
    )
    decided = drive(schedule, collectives, clock, steps=350, seconds_per_step=0.01)
    # Syncs fall every 20 steps (0.2 s); a checkpoint at the first sync 0.99 s after the last.
    assert decided == [101, 201, 301]
