"""The veterans' lane: a bounded share of the pool for the work that has run longest.

Why. The fairness agent favours work that has run little (like least-attained-
service): under sustained overload a long training job keeps losing its GPUs to
fresh work and gets them back for good only when the queue empties, so the longest
jobs all finish at the end, alone on an idle pool. Average completion time is
excellent, but the makespan stretches and utilization drops (on philly-dev one
54-day job finished 25 days after FIFO's last job). Longest-processing-time-first
is the classic remedy for makespan; with run times unknown, attained service is the
estimate of what is left (heavy-tailed run times: what has run longest will run
longest). So a share of the pool's GPUs (``PoolConfig.veteran_share``) is kept for
the training workloads that have run longest:

* candidates: training workloads without an explicit bid, not terminating, that have
  run at least ``veteran_min_attained_s`` (pending ones count what they ran before
  they were preempted);
* order: most attained service first, then earlier submission, then UID (total);
* first-fit into ``veteran_share`` x the pool's GPUs.

A veteran bids the ceiling (``max_bid_per_gpu_hour``, still capped by its tenant's
credits), so a borrower can neither outbid it nor take its place in the queue; tiers
and guarantees rank above it as always. Its attained service only grows while it
runs, so a veteran stays one until it finishes and the lane does not churn.

Pure: no clock, no I/O; ``attained`` values come from the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable

from gpupool.scheduling.model import Workload, WorkloadKind, WorkloadUid

Candidate = tuple[float, float, WorkloadUid, float]
"""(attained service s, submitted at, UID, GPUs it holds or asks for)."""


def is_candidate(workload: Workload) -> bool:
    """Whether the workload may join the lane at all (before its attained service)."""
    return (
        workload.kind is WorkloadKind.TRAINING
        and workload.bid_per_gpu_hour is None
        and workload.gpu_share is None
        and workload.preempted_at is None
    )


def select_veterans(
    candidates: Iterable[Candidate], capacity_gpus: float
) -> frozenset[WorkloadUid]:
    """The lane: most attained first (then submission, then UID), first-fit into
    ``capacity_gpus``."""
    if capacity_gpus <= 0:
        return frozenset()
    chosen: list[WorkloadUid] = []
    used = 0.0
    for attained, submitted, uid, gpus in sorted(candidates, key=_lane_order):
        del attained, submitted
        if used + gpus <= capacity_gpus:
            used += gpus
            chosen.append(uid)
    return frozenset(chosen)


def _lane_order(candidate: Candidate) -> tuple[float, float, str]:
    attained, submitted, uid, _ = candidate
    return (-attained, submitted, uid)
