"""The pending queue in bid order, bid and sorted as whole columns (numpy).

Every cycle bids every pending workload (the fairness agent's bid grows with the wait,
so all of them change every cycle) and sorts the queue by (-tier, -bid, submitted,
UID); yet only the head of the queue is then looked at one by one, and the rest
loses in bulk (about 2% of the entries on the philly-dev replay, ~10 of ~600 per
cycle). Done per entry in Python, bidding and sorting cost a third of the replay;
done per column it is a few dozen numpy operations per cycle, whatever the length.

The arithmetic is that of :meth:`~.auction.Bidder.effective` for a pending workload
(``raw``, ``_unscaled`` then ``_capped``), operation for operation and in the same
order, on IEEE doubles either way, so the bids are bit-identical (tests compare them);
the order is the same total order (full ties in tier, bid and submission broken by UID).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from gpupool.scheduling.arrival_keys import ArrivalKey, ArrivalKeys
from gpupool.scheduling.auction import Bidder
from gpupool.scheduling.model import TenantName, Workload, WorkloadUid
from gpupool.scheduling.shapes import Shape, shape_of, valid_shape
from gpupool.scheduling.veterans import PendingCandidate, pending_candidate

PendingFacts = tuple[
    Workload,
    TenantName,
    int,
    float,
    WorkloadUid,
    float,
    float,
    bool,
    float | None,
    float | None,
    float,
    float,
    float,
    float | None,
    PendingCandidate | None,
    int,
]
"""What a cycle takes from a pending workload object alone (and the config): (workload,
tenant, -tier, submitted at, UID, GPUs of its smallest gang, GPUs of its full gang, valid
shape, GPU-hours of its credit cap or None) + :data:`~.auction.BidConstants` + its
veterans' lane candidate (:func:`~.veterans.pending_candidate`) or None + its row in the
:class:`PendingTable` that holds it."""


def pending_facts(workload: Workload, bidder: Bidder, min_attained_s: float) -> tuple[Any, ...]:
    """A pending workload's :data:`PendingFacts` but its row (:meth:`PendingTable.add` adds it)."""
    share = workload.gpu_share
    replicas = workload.replicas
    least = workload.min_replicas
    per_replica: float
    if share is None:
        per_replica = workload.gpus_per_replica
        # valid_shape of a whole-GPU workload, inlined.
        valid = per_replica >= 1 and replicas >= 1 and (least is None or 1 <= least <= replicas)
    else:
        per_replica = share.fraction
        valid = valid_shape(workload)
    gpus = replicas * per_replica if valid else 0.0
    minimum = (replicas if least is None else least) * per_replica if valid else 0.0
    return (
        workload,
        workload.tenant,
        -workload.tier,
        workload.submitted_at,
        workload.uid,
        minimum,
        gpus,
        valid,
        bidder.gpu_hours(gpus) if valid else None,
        *bidder.pending_constants(workload),
        pending_candidate(workload, min_attained_s),
    )


_Floats = npt.NDArray[np.float64]


class Queue(NamedTuple):
    """The biddable pending workloads in order (position ``i``: the ``i``-th)."""

    rows: npt.NDArray[np.intp]
    """Each one's row in the table (what the columns below are read by)."""
    bid_column: _Floats
    """Each one's bid (:meth:`~.auction.Bidder.effective`)."""
    table: PendingTable
    rejected: list[int]
    """Indexes into the rows given (ascending) of workloads that cannot bid: unknown
    tenant or invalid shape (the caller gives their reasons)."""

    @property
    def workloads(self) -> list[Workload]:
        return self.table.picked(self.rows, self.table.workloads)

    @property
    def bids(self) -> list[float]:
        bids: list[float] = self.bid_column.tolist()
        return bids

    @property
    def minimums(self) -> list[float]:
        """GPUs of the smallest allowed gang."""
        return self.table.picked(self.rows, self.table.minimums)

    def column(self, name: str) -> npt.NDArray[Any]:
        """A column of the table in queue order: ``"full"`` (GPUs of the full gang),
        ``"tenant"`` (tenant code, see ``PendingTable.tenant_codes``) or ``"neg_tier"``."""
        table = self.table
        column: npt.NDArray[Any]
        if name == "full":
            column = table.floats[_FULL, self.rows]
        else:
            column = table.ints[_INT_COLUMNS.index(name), self.rows]
        return column


_GROW = 256
"""Rows a :class:`PendingTable` starts with (it doubles when full)."""


class PendingTable(dict[str, PendingFacts]):
    """Pending workloads' facts by UID, carried between cycles (:mod:`.workload_index`), with the
    numbers :func:`order_queue` reads kept as columns: row ``facts[15]`` of each column
    holds that facts tuple's numbers. Rows are only added (a replaced workload gets a new
    row); the cycle swaps in a fresh table once too many rows are gone."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0
        self.tenant_codes: dict[TenantName, int] = {}
        self.workloads: list[Workload] = []
        self.uids: list[WorkloadUid] = []
        self.minimums: list[float] = []
        self.shapes: list[Shape] = []
        """Each row's :func:`~.shapes.shape_of` (what placement depends on)."""
        size = _GROW
        self.floats = np.empty((_FLOAT_COLUMNS, size), dtype=np.float64)
        """Submitted, attained, denominator, bonus, explicit bid, aging start, credit
        cap GPU-hours (these three NaN for None), GPUs of the full gang, and the arrival
        key (:mod:`.arrival_keys`: ascends with (submitted, UID), set by :meth:`arranged`)."""
        self.ints = np.empty((len(_INT_COLUMNS), size), dtype=np.intp)
        """-tier and tenant code."""
        self.valid = np.empty(size, dtype=bool)
        self.lane = np.empty(size, dtype=bool)
        """Whether the row's workload is a veterans' lane candidate (``facts[14]``)."""
        self.live = np.empty(size, dtype=bool)
        """Whether the row is a workload pending now (set by :mod:`.workload_index`)."""
        self.candidates: list[PendingCandidate | None] = []
        self._arrival = ArrivalKeys()
        self._unkeyed: list[ArrivalKey] = []
        """(submitted at, UID) of the rows added since :meth:`arranged` last keyed them."""

    def add(self, facts: tuple[Any, ...]) -> PendingFacts:
        """Keep ``facts`` (all but the row) under its UID in a new row; the complete facts."""
        row = self.rows
        if row == self.valid.shape[0]:
            self._grow()
        (workload, tenant, neg_tier, submitted, uid, minimum, full, valid, gpu_hours) = facts[:9]
        explicit, attained, denominator, bonus, aging_from = facts[9:14]
        code = self.tenant_codes.setdefault(tenant, len(self.tenant_codes))
        self.floats[:, row] = (
            submitted,
            attained,
            denominator,
            bonus,
            _NAN if explicit is None else explicit,
            _NAN if aging_from is None else aging_from,
            _NAN if gpu_hours is None else gpu_hours,
            full,
            _NAN,  # the arrival key: see arranged()
        )
        self.ints[:, row] = (neg_tier, code)
        self._unkeyed.append((submitted, uid))
        self.valid[row] = valid
        candidate = facts[14]
        self.lane[row] = candidate is not None
        self.live[row] = False
        self.candidates.append(candidate)
        self.workloads.append(workload)
        self.uids.append(uid)
        self.minimums.append(minimum)
        self.shapes.append(shape_of(workload))
        self.rows = row + 1
        complete: PendingFacts = (*facts, row)
        self[uid] = complete
        return complete

    def arranged(self) -> PendingTable:
        """The table with every row's arrival key set (:mod:`.arrival_keys`)."""
        if self._unkeyed:
            self._arrival.extend(self._unkeyed, self.floats[_ARRIVAL])
            self._unkeyed = []
        return self

    def lane_candidates(self, rows: npt.NDArray[np.intp]) -> list[PendingCandidate]:
        """The veterans' lane candidates among ``rows``, in that order."""
        picked: list[PendingCandidate] = _pick(rows[self.lane[rows]].tolist(), self.candidates)
        return picked

    @staticmethod
    def picked(rows: npt.NDArray[np.intp], column: Sequence[_T]) -> list[_T]:
        """``column`` (one of the lists) at ``rows``, in that order."""
        return _pick(rows.tolist(), column)

    def lane_mask(self, veterans: frozenset[str]) -> npt.NDArray[np.bool_]:
        """Per row: whether its workload is in the veterans' lane (only the rows of the
        current facts of each UID are marked; the cycle reads no other)."""
        mask = np.zeros(self.rows, dtype=bool)
        for uid in veterans:
            facts = self.get(uid)
            if facts is not None:
                mask[facts[15]] = True
        return mask

    def _grow(self) -> None:
        self.floats = _doubled(self.floats, self.rows)
        self.ints = _doubled(self.ints, self.rows)
        self.valid = _doubled(self.valid, self.rows)
        self.lane = _doubled(self.lane, self.rows)
        self.live = _doubled(self.live, self.rows)


_A = TypeVar("_A", bound=npt.NDArray[Any])
_T = TypeVar("_T")


def _doubled(column: _A, rows: int) -> _A:
    """``column`` (rows along its last axis) with twice the room, its first ``rows`` kept."""
    grown = np.empty((*column.shape[:-1], 2 * column.shape[-1]), dtype=column.dtype)
    grown[..., :rows] = column[..., :rows]
    return grown  # type: ignore[return-value]


_FLOAT_COLUMNS = 9
_FULL = 7
_ARRIVAL = 8
_INT_COLUMNS = ("neg_tier", "tenant")
_NAN = float("nan")


def _pick(rows: list[int], column: Sequence[Any]) -> list[Any]:
    if len(rows) > 1:
        return list(itemgetter(*rows)(column))
    return [column[row] for row in rows]


def order_queue(
    table: PendingTable,
    rows: Sequence[int] | npt.NDArray[np.intp],
    *,
    now: float,
    bidder: Bidder,
    budgets: Mapping[TenantName, float],
) -> Queue:
    """The pending workloads (``rows`` of ``table``) that can bid, sorted by (-tier, -bid,
    submitted, UID), with their bids (:meth:`Bidder.effective` of each); ``budgets``:
    :meth:`Bidder.budget` per known tenant."""
    at = np.asarray(rows, dtype=np.intp)
    if not len(at):
        return Queue(at, np.empty(0), table, [])
    submitted, attained, denominator, bonus, explicit, aging_from, gpu_hours, _, arrival = (
        table.arranged().floats[:, at]
    )
    neg_tiers, codes = table.ints[:, at]
    base = bidder.base_bid
    bases = bidder.bases
    max_bid = bidder.max_bid
    names = list(table.tenant_codes)
    known = np.array([name in budgets for name in names], dtype=bool)
    biddable = table.valid[at] & known[codes]
    rejected: list[int] = np.flatnonzero(~biddable).tolist()
    tenant_bases = np.array(
        [bases.get(name, base) if bases else base for name in names], dtype=np.float64
    )
    tenant_budgets = np.array([budgets.get(name, 0.0) for name in names], dtype=np.float64)
    with np.errstate(all="ignore"):
        # Bidder.effective of pending work, column by column (bit-identical, see the module).
        waited = (now - submitted) - attained
        rho = np.where(
            denominator <= 0,
            1.0,
            (np.where(waited > 0, waited, 0.0) + denominator) / denominator,
        )
        bid = rho * bonus
        if bidder.aging_s > 0:
            queued = now - aging_from
            bid = np.where(
                np.isnan(aging_from), bid, bid + np.where(queued > 0, queued, 0.0) / bidder.aging_s
            )
        bid = tenant_bases[codes] * bid
        bid = np.where(bid < max_bid, bid, max_bid)
        if bidder.veterans:
            bid = np.where(table.lane_mask(bidder.veterans)[at], max_bid, bid)
        bid = np.where(np.isnan(explicit), bid, explicit)
        cap = tenant_budgets[codes] / gpu_hours
        bid = np.where(np.isnan(gpu_hours) | (bid < cap), bid, cap)
    if rejected:
        keep = np.flatnonzero(biddable)
        order = keep[_sort(arrival[keep], bid[keep], neg_tiers[keep])]
    else:
        order = _sort(arrival, bid, neg_tiers)
    return Queue(at[order], bid[order], table, rejected)


def _sort(arrival: _Floats, bids: _Floats, neg_tiers: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """The positions in (-tier, -bid, submitted, UID) order: the arrival key stands for
    the last two; the tier is left out when every entry has the same."""
    if len(neg_tiers) and (neg_tiers == neg_tiers[0]).all():
        return np.lexsort((arrival, -bids))
    return np.lexsort((arrival, -bids, neg_tiers))
