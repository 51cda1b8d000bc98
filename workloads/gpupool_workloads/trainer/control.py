"""When the ranks of a gang agree to stop or to take a time-based checkpoint.

Any rank may be signalled, and only rank 0's clock decides when a periodic
checkpoint is due, so both facts need one all-reduce to become common knowledge.
Doing it at every step costs a blocking round trip per step, so the ranks agree
at each such sync also on when the next one is:
about every ``period_seconds`` of training (at least every step when steps are
slower than that). A SIGTERM is then acted on within ``period_seconds`` plus a
step; the cost is one tiny all-reduce per period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gpupool_workloads.trainer.distributed import Collectives

CONTROL_PERIOD_SECONDS = 0.2
MAX_STEPS_BETWEEN_SYNCS = 10_000


@dataclass(frozen=True)
class ControlDecision:
    preempt: bool
    checkpoint_due: bool


NO_DECISION = ControlDecision(preempt=False, checkpoint_due=False)


class ControlSchedule:
    def __init__(
        self,
        collectives: Collectives,
        *,
        checkpoint_every_seconds: float,
        clock: Callable[[], float],
        first_step: int,
        period_seconds: float = CONTROL_PERIOD_SECONDS,
    ) -> None:
        self._collectives = collectives
        self._owns_checkpoint_clock = collectives.place.rank == 0
        self._checkpoint_every_seconds = checkpoint_every_seconds
        self._clock = clock
        self._period_seconds = period_seconds
        self._next_sync_step = first_step
        self._last_sync_step = first_step
        self._last_sync_at = clock()
        self._last_checkpoint_at = clock()

    def checkpoint_taken(self) -> None:
        self._last_checkpoint_at = self._clock()

    def _proposal(self, step: int, now: float) -> int:
        steps = step - self._last_sync_step
        if steps <= 0:
            return 1
        seconds_per_step = max((now - self._last_sync_at) / steps, 1e-9)
        return max(1, min(int(self._period_seconds / seconds_per_step), MAX_STEPS_BETWEEN_SYNCS))

    def at_boundary(self, step: int, *, preempt_requested: bool) -> ControlDecision:
        """Called by every rank before every step; collective only on sync steps."""
        if step < self._next_sync_step:
            return NO_DECISION
        now = self._clock()
        due = (
            self._owns_checkpoint_clock
            and now - self._last_checkpoint_at >= self._checkpoint_every_seconds
        )
        preempt, due, interval = self._collectives.agree(
            preempt=preempt_requested,
            checkpoint_due=due,
            steps_to_next_sync=self._proposal(step, now),
        )
        self._last_sync_step, self._last_sync_at = step, now
        self._next_sync_step = step + interval
        return ControlDecision(preempt=preempt, checkpoint_due=due)
