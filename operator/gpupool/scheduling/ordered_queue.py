"""The pending queue in the order a cycle considers it, kept as columns.

A cycle orders every pending workload (:mod:`.queue_order`), but looks at only the
head of that order one by one: the rest loses in bulk or in runs of shapes that already
failed, and their reasons are built only when read. Building one ``(workload, bid,
inside guarantee, GPUs of its smallest gang)`` tuple per entry up front cost more than
the walk itself on the philly-dev replay (hundreds built, a few dozen read per cycle);
:class:`OrderedQueue` builds an entry when it is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import numpy.typing as npt

from gpupool.scheduling.model import Workload
from gpupool.scheduling.shapes import Shape

Entry = tuple[Workload, float, bool, float]
"""A pending workload in order: (workload, effective bid, inside guarantee, GPUs of its
smallest allowed gang)."""


class OrderedQueue:
    """The pending workloads in order (position ``i``: the ``i``-th), as columns.

    ``rows`` indexes ``workloads``, ``minimums`` and ``shapes`` (the pending table's
    columns, which only grow: rows read later still hold the same workloads); ``rows``,
    ``bids``, ``guaranteed`` and ``neg_tiers`` are arrays by position, read one item at
    a time (``row_at``, ``bid_at``, ``guaranteed_at``: Python numbers, as the lists they
    stand for would give), so that no list of them is built per cycle.
    """

    __slots__ = (
        "bid_at",
        "bids",
        "guaranteed",
        "guaranteed_at",
        "minimums",
        "neg_tiers",
        "row_at",
        "rows",
        "shapes",
        "workloads",
    )

    def __init__(
        self,
        rows: npt.NDArray[np.intp],
        bids: npt.NDArray[np.float64],
        guaranteed: npt.NDArray[np.bool_],
        neg_tiers: npt.NDArray[np.intp],
        *,
        workloads: Sequence[Workload],
        minimums: Sequence[float],
        shapes: Sequence[Shape],
    ) -> None:
        self.rows = rows
        self.bids = bids
        self.guaranteed = guaranteed
        """Whether the entry fits its tenant's unused guarantee (ordered first per tier)."""
        self.neg_tiers = neg_tiers
        self.workloads = workloads
        self.minimums = minimums
        self.shapes = shapes
        """Per row, like ``workloads``: each one's :func:`~.shapes.shape_of`."""
        self.row_at: Callable[[int], int] = rows.item
        self.bid_at: Callable[[int], float] = bids.item
        self.guaranteed_at: Callable[[int], bool] = guaranteed.item

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position: int) -> Entry:
        row = self.row_at(position)
        return (
            self.workloads[row],
            self.bid_at(position),
            self.guaranteed_at(position),
            self.minimums[row],
        )

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.between(0, len(self.rows)))

    def workload(self, position: int) -> Workload:
        return self.workloads[self.row_at(position)]

    def between(self, start: int, end: int) -> list[Entry]:
        """The entries at positions ``start`` to ``end`` (excluded)."""
        workloads = self.workloads
        minimums = self.minimums
        return [
            (workloads[row], bid, guaranteed, minimums[row])
            for row, bid, guaranteed in zip(
                self.rows[start:end].tolist(),
                self.bids[start:end].tolist(),
                self.guaranteed[start:end].tolist(),
                strict=True,
            )
        ]

    def phase_end(self, start: int, tier: int, guaranteed: bool) -> int:
        """The position after the last entry of the phase (``tier``, ``guaranteed``) from
        ``start``: the queue is sorted by phase (tier down, work inside a guarantee first),
        so a binary search finds it (a scan of the bulk-lost tail cost as much as the
        cycle's placements in the replay)."""
        # The phase as one ascending number: 2 x -tier, plus 1 outside a guarantee.
        phases = 2 * self.neg_tiers[start:] + ~self.guaranteed[start:]
        return start + int(np.searchsorted(phases, 2 * -tier + (not guaranteed), side="right"))

    def reordered(self, key: Callable[[Entry], tuple[int, int, float, str]]) -> OrderedQueue:
        """The same entries sorted (stably) by ``key`` of each."""
        order = sorted(range(len(self.rows)), key=lambda position: key(self[position]))
        return OrderedQueue(
            self.rows[order],
            self.bids[order],
            self.guaranteed[order],
            self.neg_tiers[order],
            workloads=self.workloads,
            minimums=self.minimums,
            shapes=self.shapes,
        )
