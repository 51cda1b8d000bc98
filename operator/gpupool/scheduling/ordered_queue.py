"""The pending queue in the order a cycle considers it, kept as columns.

A cycle orders every pending workload (:mod:`.queue_order`), but looks at only the
head of that order one by one: the rest loses in bulk or in runs of shapes that already
failed, and their reasons are built only when read. Building one ``(workload, bid,
inside guarantee, GPUs of its smallest gang)`` tuple per entry up front cost more than
the walk itself on the philly-dev replay (hundreds built, a few dozen read per cycle);
:class:`OrderedQueue` builds an entry when it is read.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence

from gpupool.scheduling.model import Workload
from gpupool.scheduling.shapes import Shape

Entry = tuple[Workload, float, bool, float]
"""A pending workload in order: (workload, effective bid, inside guarantee, GPUs of its
smallest allowed gang)."""


class OrderedQueue:
    """The pending workloads in order (position ``i``: the ``i``-th), as columns.

    ``rows`` indexes ``workloads``, ``minimums`` and ``shapes`` (the pending table's columns, which
    only grow: rows read later still hold the same workloads); ``bids``, ``guaranteed``
    and ``neg_tiers`` are per position.
    """

    __slots__ = ("bids", "guaranteed", "minimums", "neg_tiers", "rows", "shapes", "workloads")

    def __init__(
        self,
        rows: list[int],
        bids: list[float],
        guaranteed: list[bool],
        neg_tiers: list[int],
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

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position: int) -> Entry:
        row = self.rows[position]
        return (
            self.workloads[row],
            self.bids[position],
            self.guaranteed[position],
            self.minimums[row],
        )

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.between(0, len(self.rows)))

    def workload(self, position: int) -> Workload:
        return self.workloads[self.rows[position]]

    def between(self, start: int, end: int) -> list[Entry]:
        """The entries at positions ``start`` to ``end`` (excluded)."""
        workloads = self.workloads
        minimums = self.minimums
        return [
            (workloads[row], bid, guaranteed, minimums[row])
            for row, bid, guaranteed in zip(
                self.rows[start:end],
                self.bids[start:end],
                self.guaranteed[start:end],
                strict=True,
            )
        ]

    def phase_end(self, start: int, tier: int, guaranteed: bool) -> int:
        """The position after the last entry of the phase (``tier``, ``guaranteed``) from
        ``start``: the queue is sorted by phase (tier down, work inside a guarantee first),
        so a binary search finds it (a scan of the bulk-lost tail cost as much as the
        cycle's placements in the replay)."""
        neg_tiers = self.neg_tiers
        flags = self.guaranteed
        return bisect_right(
            range(len(neg_tiers)),
            (-tier, not guaranteed),
            lo=start,
            key=lambda position: (neg_tiers[position], not flags[position]),
        )

    def reordered(self, key: Callable[[Entry], tuple[int, int, float, str]]) -> OrderedQueue:
        """The same entries sorted (stably) by ``key`` of each."""
        order = sorted(range(len(self.rows)), key=lambda position: key(self[position]))
        return OrderedQueue(
            [self.rows[position] for position in order],
            [self.bids[position] for position in order],
            [self.guaranteed[position] for position in order],
            [self.neg_tiers[position] for position in order],
            workloads=self.workloads,
            minimums=self.minimums,
            shapes=self.shapes,
        )
