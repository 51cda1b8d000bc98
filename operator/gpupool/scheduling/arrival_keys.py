"""One float per pending-table row that ascends with (submitted at, UID): the queue's
last sort key.

The queue is sorted by (-tier, -bid, submitted, UID) every cycle (:mod:`.queue_order`).
Full ties in tier and bid are common (bids capped at the ceiling or by credits), so the
last two keys matter; folded into one float they cost one ``lexsort`` pass instead of
two, and no per-row rank shifts: a row added between two others gets the midpoint of
their keys (rows mostly arrive last, and get the last key plus one). Once a gap is too
narrow for a midpoint, every key is renumbered.
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np
import numpy.typing as npt

from gpupool.scheduling.model import WorkloadUid

ArrivalKey = tuple[float, WorkloadUid]
"""(submitted at, UID)."""

ONE_BY_ONE = 16
"""Rows keyed one by one up to this many at once, or up to 1/128 of all rows if that is
more (each insertion moves the list's tail; a sort of every row costs about as much as
that many); more are keyed by sorting every row."""


class ArrivalKeys:
    """The keys of a table's rows (see the module); :meth:`extend` keys new rows."""

    __slots__ = ("_keys", "_sorted", "_values")

    def __init__(self) -> None:
        self._keys: list[ArrivalKey] = []
        """Each keyed row's (submitted at, UID), by row."""
        self._sorted: list[ArrivalKey] = []
        """The same, ascending."""
        self._values: list[float] = []
        """The key of each entry of :attr:`_sorted` (strictly ascending)."""

    def __len__(self) -> int:
        return len(self._keys)

    def extend(self, keys: list[ArrivalKey], column: npt.NDArray[np.float64]) -> None:
        """Key the rows ``len(self)`` onwards, whose (submitted at, UID) are ``keys``, in
        ``column`` (indexed by row)."""
        first = len(self._keys)
        self._keys.extend(keys)
        if len(keys) > max(ONE_BY_ONE, len(self._keys) // 128):
            self._renumber(column)
            return
        ordered = self._sorted
        values = self._values
        for row, key in enumerate(keys, start=first):
            if not ordered or ordered[-1] <= key:  # the usual case: it came last
                value = values[-1] + 1.0 if values else 0.0
                ordered.append(key)
                values.append(value)
                column[row] = value
                continue
            at = bisect_left(ordered, key)
            if at == 0:
                value = values[0] - 1.0
            else:
                low, high = values[at - 1], values[at]
                value = (low + high) / 2
                if not low < value < high:  # no float between them: renumber every row
                    self._renumber(column, upto=row + 1)
                    ordered, values = self._sorted, self._values
                    continue
            ordered.insert(at, key)
            values.insert(at, value)
            column[row] = value

    def _renumber(self, column: npt.NDArray[np.float64], upto: int | None = None) -> None:
        """Key the first ``upto`` rows (all by default) afresh: 0, 1, 2... in key order."""
        keys = self._keys
        count = len(keys) if upto is None else upto
        rows = sorted(range(count), key=keys.__getitem__)
        self._sorted = [keys[row] for row in rows]
        self._values = [float(value) for value in range(count)]
        column[rows] = np.arange(count, dtype=np.float64)
