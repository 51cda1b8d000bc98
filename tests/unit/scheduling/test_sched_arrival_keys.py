"""Arrival keys ascend with (submitted at, UID), however rows come."""

from __future__ import annotations

import random

import numpy as np
import pytest

from gpupool.scheduling.arrival_keys import ONE_BY_ONE, ArrivalKey, ArrivalKeys
from gpupool.scheduling.model import WorkloadUid


def _check(keys: list[ArrivalKey], column: np.ndarray) -> None:
    values = column[: len(keys)].tolist()
    assert not any(np.isnan(values))
    by_value = sorted(range(len(keys)), key=values.__getitem__)
    assert len(set(values)) == len(values)  # strictly ordered, even for equal keys
    ordered = [keys[row] for row in by_value]
    assert ordered == sorted(ordered)


@pytest.mark.parametrize("seed", range(20))
def test_keys_follow_submission_then_uid(seed: int) -> None:
    rng = random.Random(seed)
    arrival = ArrivalKeys()
    column = np.full(5000, np.nan)
    keys: list[ArrivalKey] = []
    clock = 0.0
    for _ in range(60):
        batch: list[ArrivalKey] = []
        for _ in range(rng.choice([1, 1, 2, 5, ONE_BY_ONE, ONE_BY_ONE + 1, 40])):
            roll = rng.random()
            if roll < 0.5:  # a new arrival, last in time
                clock += rng.choice([0.0, 1.0, 7.5])
                submitted = clock
            elif roll < 0.8 and keys:  # a requeue: an old submission time
                submitted = rng.choice(keys)[0]
            else:
                submitted = rng.uniform(0.0, clock + 1.0)
            uid = WorkloadUid(f"w{rng.randrange(300):03d}")
            batch.append((submitted, uid))
        arrival.extend(batch, column)
        keys += batch
        assert len(arrival) == len(keys)
        _check(keys, column)


def test_a_gap_too_narrow_for_a_midpoint_renumbers_every_row() -> None:
    arrival = ArrivalKeys()
    column = np.full(200, np.nan)
    keys: list[ArrivalKey] = [(0.0, WorkloadUid("b")), (0.0, WorkloadUid("z"))]
    arrival.extend(keys, column)  # keys 0 and 1
    # "y", "yy", "yyy"...: each lands between the one before and "z", halving the gap
    # to 1.0, which a float runs out of after about 53 halvings.
    for first in range(1, 121, 8):  # in batches: some renumber in the middle of one
        batch = [(0.0, WorkloadUid("y" * length)) for length in range(first, first + 8)]
        batch.append((1000.0 + first, WorkloadUid("later")))  # keyed after a renumber
        arrival.extend(batch, column)
        keys += batch
        _check(keys, column)
    assert column[: len(keys)].max() > 1.0  # renumbered 0, 1, 2... on the way
