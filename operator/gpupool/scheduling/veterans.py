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
* order: largest *claim* first, then earlier submission, then UID (total); a
  candidate's claim is its attained service, or ``veteran_age_credit`` x its time
  since submission if that is more (see below);
* first-fit into ``veteran_share`` x the pool's usable GPUs.

The age credit. Ordered by attained service alone, the lane is sticky: its members
only gain attained service, so a long job that happened to be starved before it
crossed the bar (it queued for weeks behind fresh work) is overtaken by luckier
ones for as long as they run, and ends up the straggler that runs alone at the end
(on philly-dev with a 40% lane: one 8-GPU job finished 5 days after the next one).
Crediting a veteran with a fraction of its time in the system bounds that: once it
has been around long enough, its claim passes the luckier jobs' attained service
and it gets its turn, while a job that runs at least that fraction of its life is
ordered exactly as before. Only workloads past ``veteran_min_attained_s`` are
candidates at all, so the credit reorders veterans and never admits fresh work.

A veteran bids the ceiling (``max_bid_per_gpu_hour``, still capped by its tenant's
credits), so a borrower can neither outbid it nor take its place in the queue; tiers
and guarantees rank above it as always. A running member's claim grows at least as
fast as a waiting candidate's (its attained service grows by a second per second, a
time credit by ``veteran_age_credit``), so waiting veterans never overtake the members
and the lane does not churn: it changes as members finish and as jobs cross the bar.

Pure: no clock, no I/O; ``attained`` values come from the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

from gpupool.scheduling.model import Workload, WorkloadKind, WorkloadUid

Candidate = tuple[float, float, WorkloadUid, float]
"""(``now`` minus attained service s, submitted at, UID, GPUs it holds or asks for): the
first field is the moment the workload would have started had it run without a break,
smallest for the one that has run longest. The lane order is the natural order of these
tuples once the age credit is applied (:func:`choose_veterans`)."""


def lane_candidate(workload: Workload, gpus: float) -> Candidate | None:
    """A running workload's lane candidate (whatever it has run so far), or ``None`` if it
    can never join. Depends on the workload object alone, so a cycle carries it along."""
    allocation = workload.allocation
    if allocation is None or not is_candidate(workload):
        return None
    return (
        allocation.started_at - workload.attained_service_s,
        workload.submitted_at,
        workload.uid,
        gpus,
    )


PendingCandidate = tuple[float, float, WorkloadUid, float]
"""A pending workload's lane candidate before the cycle's clock: (attained service s,
submitted at, UID, GPUs it asks for)."""


def pending_candidate(workload: Workload, min_attained_s: float) -> PendingCandidate | None:
    """A pending workload's lane candidate, or ``None`` if it cannot join (not a candidate,
    or it has not run ``min_attained_s``). Depends on the workload object alone (and the
    config), so a cycle carries it along."""
    attained = workload.attained_service_s
    if attained < min_attained_s or not is_candidate(workload):
        return None
    return (attained, workload.submitted_at, workload.uid, _gpus(workload))


def choose_veterans(
    running: list[Candidate],
    pending: Iterable[PendingCandidate],
    *,
    now: float,
    capacity_gpus: float,
    age_credit: float = 0.0,
) -> frozenset[WorkloadUid]:
    """The lane of a cycle: ``running`` are the running workloads' candidates
    (:func:`lane_candidate`) that have run at least the lane's minimum; ``pending`` are the
    waiting workloads' :func:`pending_candidate` s (those that have run long enough are
    candidates too); ``age_credit`` is ``PoolConfig.veteran_age_credit``. May reuse the
    ``running`` list.

    The age credit raises a candidate's claim to ``age_credit`` x its time in the system
    where that is more than its attained service: the first field becomes ``min(now -
    attained, now - credit * (now - submitted))``, computed as ``min(now - attained, (now
    - credit * now) + credit * submitted)``, while the candidates are listed (one tuple
    each, not one more pass).
    """
    if capacity_gpus <= 0:
        return frozenset()
    candidates: list[Candidate]
    if age_credit <= 0:
        candidates = running
        candidates += [
            (now - attained, submitted, uid, gpus) for attained, submitted, uid, gpus in pending
        ]
    else:
        credit = age_credit
        base = now - credit * now
        # (claim if claim < start else start) is min(start, claim), without a call each.
        candidates = [
            (
                (claim if (claim := base + credit * submitted) < start else start),
                submitted,
                uid,
                gpus,
            )
            for start, submitted, uid, gpus in running
        ]
        candidates += [
            (
                (
                    claim
                    if (claim := base + credit * submitted) < (start := now - attained)
                    else start
                ),
                submitted,
                uid,
                gpus,
            )
            for attained, submitted, uid, gpus in pending
        ]
    return select_veterans(candidates, capacity_gpus)


def _gpus(workload: Workload) -> float:
    return float(workload.replicas * workload.gpus_per_replica)


def is_candidate(workload: Workload) -> bool:
    """Whether the workload may join the lane at all (before its attained service)."""
    return (
        workload.kind is WorkloadKind.TRAINING
        and workload.bid_per_gpu_hour is None
        and workload.gpu_share is None
        and workload.preempted_at is None
    )


def select_veterans(candidates: list[Candidate], capacity_gpus: float) -> frozenset[WorkloadUid]:
    """First-fit of ``candidates`` in their natural (lane) order into ``capacity_gpus``; the
    pass ends once not even the smallest candidate fits in what is left.

    A sort, not a heap, although about half the candidates are never reached: sorting
    these tuples compares their first fields as floats in C (only ties go on to the
    next field), about 1.5 times as fast on the philly-dev replay as a heap's rich
    comparisons. The order is the same: the tuples' (with unique UIDs, a total one).
    """
    if not candidates:
        return frozenset()
    chosen: list[WorkloadUid] = []
    room = capacity_gpus
    smallest = min(map(_gpus_of, candidates))
    for _, _, uid, gpus in sorted(candidates):
        if room < smallest:
            break
        if gpus <= room:
            room -= gpus
            chosen.append(uid)
    return frozenset(chosen)


_gpus_of = itemgetter(3)
"""A :data:`Candidate`'s GPUs (read in C, not by a generator per candidate)."""
