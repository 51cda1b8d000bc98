"""The veterans' lane selection: order and first-fit bound, and the same claims (to the
bit) and lane as the plain way (``min`` per claim, a heap) on random candidates."""

from __future__ import annotations

import heapq
import random

import pytest

from gpupool.scheduling.model import WorkloadUid
from gpupool.scheduling.veterans import (
    Candidate,
    PendingCandidate,
    choose_veterans,
    select_veterans,
)


def uid(name: str) -> WorkloadUid:
    return WorkloadUid(name)


def test_most_attained_first_then_first_fit_into_the_share() -> None:
    lane = select_veterans(
        [
            (-10.0, 0.0, uid("small-old"), 2.0),
            (-50.0, 0.0, uid("big"), 16.0),  # ran longest but does not fit 12 GPUs
            (-40.0, 0.0, uid("eight"), 8.0),
            (-30.0, 0.0, uid("four"), 4.0),
            (-20.0, 0.0, uid("two"), 2.0),
        ],
        12.0,
    )
    assert lane == {uid("eight"), uid("four")}  # then 0 GPUs left: "two" does not fit


def test_ties_go_to_the_earlier_submission_then_the_uid() -> None:
    candidates = [
        (-10.0, 5.0, uid("late"), 4.0),
        (-10.0, 1.0, uid("b"), 4.0),
        (-10.0, 1.0, uid("a"), 4.0),
    ]
    assert select_veterans(list(candidates), 4.0) == {uid("a")}
    assert select_veterans(list(candidates), 8.0) == {uid("a"), uid("b")}


def test_no_share_no_lane() -> None:
    assert select_veterans([(-10.0, 0.0, uid("a"), 1.0)], 0.0) == frozenset()


NOW = 1_000_000.0


def candidate(name: str, *, submitted: float, attained: float, gpus: float = 8.0) -> Candidate:
    return (NOW - attained, submitted, uid(name), gpus)


def lane(candidates: list[Candidate], capacity: float, credit: float) -> frozenset[WorkloadUid]:
    return choose_veterans(list(candidates), [], now=NOW, capacity_gpus=capacity, age_credit=credit)


def test_the_age_credit_lets_a_starved_veteran_pass_luckier_ones() -> None:
    candidates = [
        # ran 25 h of the 28 h since it came: the lane's usual pick
        candidate("lucky", submitted=NOW - 100_800, attained=90_000),
        # just past the bar after 11.6 days in the system
        candidate("starved", submitted=0.0, attained=86_400),
    ]
    assert lane(candidates, 8.0, 0.0) == {uid("lucky")}
    # 0.3 x 1,000,000 s in the system = a claim of 300,000 s > lucky's 90,000
    assert lane(candidates, 8.0, 0.3) == {uid("starved")}


def test_the_age_credit_keeps_the_order_of_jobs_that_ran_that_share_of_their_life() -> None:
    candidates = [
        candidate("a", submitted=NOW - 400_000, attained=200_000),  # ran 50% of its life
        candidate("b", submitted=NOW - 300_000, attained=150_000),  # 50%
        candidate("c", submitted=NOW - 1_000_000, attained=300_000),  # 30%: claim unchanged
    ]
    assert lane(candidates, 16.0, 0.3) == lane(candidates, 16.0, 0.0) == {uid("c"), uid("a")}


def reference_claims(candidates: list[Candidate], now: float, credit: float) -> list[Candidate]:
    """The age credit the plain way: ``min`` per claim."""
    if credit <= 0:
        return candidates
    base = now - credit * now
    return [(min(c[0], base + credit * c[1]), c[1], c[2], c[3]) for c in candidates]


def reference_lane(candidates: list[Candidate], capacity_gpus: float) -> frozenset[WorkloadUid]:
    """First-fit the plain way: the natural order through a heap. Consumes ``candidates``."""
    if not candidates:
        return frozenset()
    chosen = []
    room = capacity_gpus
    smallest = min(c[3] for c in candidates)
    heapq.heapify(candidates)
    while candidates and room >= smallest:
        _, _, name, gpus = heapq.heappop(candidates)
        if gpus <= room:
            room -= gpus
            chosen.append(name)
    return frozenset(chosen)


@pytest.mark.parametrize("seed", range(40))
def test_the_lane_is_the_reference_lane_ties_included(seed: int) -> None:
    rng = random.Random(seed)
    now = 5_000_000.0 + rng.random()
    # Few distinct times (many ties in the claims, credited or not, and in submissions)
    # and sizes, fractional ones too.
    times = [rng.uniform(0.0, now) for _ in range(rng.choice([2, 5, 50]))]
    sizes = [1.0, 2.0, 8.0, 3.0, 16.0, 0.37]
    candidates = [
        (
            rng.choice(times),
            rng.choice(times),
            uid(f"w{rng.randrange(10**6)}-{i}"),
            rng.choice(sizes),
        )
        for i in range(rng.choice([0, 1, 3, 30, 200]))
    ]
    # Some of them wait: (attained, submitted, UID, GPUs), their start is now - attained.
    waiting = rng.sample(range(len(candidates)), len(candidates) // 3)
    running = [c for i, c in enumerate(candidates) if i not in waiting]
    pending: list[PendingCandidate] = [
        (now - start, submitted, name, gpus)
        for i, (start, submitted, name, gpus) in enumerate(candidates)
        if i in waiting
    ]
    as_running = running + [(now - a, s, name, g) for a, s, name, g in pending]
    for credit in (0.0, 0.3, rng.random()):
        for capacity in (0.0, 8.0, rng.uniform(0.0, 400.0)):
            chosen = choose_veterans(
                list(running), pending, now=now, capacity_gpus=capacity, age_credit=credit
            )
            reference = reference_lane(reference_claims(list(as_running), now, credit), capacity)
            assert chosen == reference
    assert select_veterans(list(as_running), 8.0) == reference_lane(list(as_running), 8.0)
