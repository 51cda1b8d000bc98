"""The veterans' lane selection: order and first-fit bound."""

from __future__ import annotations

from gpupool.scheduling.model import WorkloadUid
from gpupool.scheduling.veterans import select_veterans


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
