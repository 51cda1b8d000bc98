"""Where each workload of the last snapshot stands, carried from one cycle to the next.

Why. A cycle starts from every workload of its snapshot: the pending ones go to the
queue's table (:mod:`.queue_order`), the running ones to the capacity index in the
snapshot's order (marking shared GPUs, the guarantee order and the prices depend on
it). Walking the whole mapping cost an eighth of a replay, yet between two cycles of
a replay only a handful of workloads arrive, start, finish or requeue.

What is kept. Workloads are frozen: the simulator and the operator's cache replace a
workload object when anything about it changes and share it unchanged otherwise, so
what a cycle derives from a workload object alone (and the config, itself frozen) is
the same next cycle for every object still there. A :class:`WorkloadIndex` per config
keeps, for the snapshot it last indexed:

* the pending workloads' rows in the :class:`~.queue_order.PendingTable` (their facts,
  carried by UID and counted only for the very same object);
* the other workloads (running or terminating) in the snapshot's order, each with its
  :data:`RunningFacts` (derived from the object and the node layouts alone), or
  ``None`` while it is terminating or one of its GPUs is gone (the cycle looks at
  those again).

How it follows the snapshots. A snapshot that lists the ``changes`` of its workloads
since an earlier snapshot's (:class:`~.snapshot.WorkloadChanges`) is applied as those
few changes when the index holds exactly that earlier mapping (and the same node
layouts); any other snapshot is indexed from its whole mapping. Like
:func:`~.capacity.node_layout` this is a cache of a pure function: both ways give the
same index (tests compare them), so what is kept never changes a decision.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from gpupool.scheduling.auction import Bidder
from gpupool.scheduling.capacity import USED, NodeLayout
from gpupool.scheduling.config import PoolConfig
from gpupool.scheduling.guarantees import GuaranteeEntry, guarantee_entry
from gpupool.scheduling.kept_nodes import Hold, make_hold
from gpupool.scheduling.model import Node, Workload, WorkloadUid
from gpupool.scheduling.preemption import VictimFacts, victim_facts
from gpupool.scheduling.queue_order import PendingTable, pending_facts
from gpupool.scheduling.snapshot import Snapshot
from gpupool.scheduling.veterans import Candidate, lane_candidate

RunningFacts = tuple[
    Workload,
    GuaranteeEntry,
    float,
    int,
    WorkloadUid,
    tuple[tuple[int, int], ...],
    bool,
    int,
    Candidate | None,
    VictimFacts,
    Hold,
]
"""What a cycle takes from a running workload (not terminating, every GPU found and usable)
and the node layout alone: (workload, its guarantee entry, GPUs it holds, tier, UID, its GPU
slots as (position in ``ClusterState.nodes``, slot), whole GPUs (no share), slot count,
its veterans' lane candidate or None, its victim facts, its :data:`~.kept_nodes.Hold`)."""

Held = tuple[Workload, RunningFacts | None]
"""A workload that holds GPUs: (workload, its facts, or ``None`` if it is terminating or
one of its GPUs is not usable)."""

PlacesOf = Callable[[Workload], tuple[tuple[int, int], ...] | None]
"""A running workload's usable slots, or ``None`` (``KeptNodes.places_of``, healthy)."""

_CARRIED_SLACK = 1024
"""Rows of gone workloads tolerated in the table beyond twice the live ones before a fresh
table replaces it."""


def running_facts(workload: Workload, places: tuple[tuple[int, int], ...]) -> RunningFacts:
    """The facts of a running workload whose GPUs, all found and usable, are ``places``."""
    allocation = workload.allocation
    assert allocation is not None
    share = workload.gpu_share
    per_replica = workload.gpus_per_replica if share is None else share.fraction
    gpus = len(allocation.replicas) * per_replica
    return (
        workload,
        guarantee_entry(workload, gpus),
        gpus,
        int(workload.tier),
        workload.uid,
        places,
        share is None,
        len(places),
        lane_candidate(workload, gpus),
        victim_facts(workload),
        make_hold(workload, places, USED),
    )


class WorkloadIndex:
    """The workloads of the last snapshot indexed for one config (see the module)."""

    __slots__ = (
        "_indexed",
        "_layouts",
        "_next_position",
        "_positions",
        "config",
        "held",
        "held_positions",
        "pending",
        "table",
    )

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.table = PendingTable()
        self.pending: dict[WorkloadUid, int] = {}
        """The pending workloads' rows in :attr:`table` (marked ``live`` there)."""
        self.held: list[Held] = []
        """The workloads holding GPUs, in the snapshot's order."""
        self.held_positions: list[int] = []
        """Their positions in that order (ascending; what :attr:`held` is kept sorted by)."""
        self._positions: dict[WorkloadUid, int] = {}
        """Every indexed workload's position: its place in the mapping when indexed whole,
        or a number after every earlier one when it arrived in a change."""
        self._next_position = 0
        self._layouts: list[tuple[Node, NodeLayout]] | None = None
        self._indexed: Mapping[WorkloadUid, Workload] | None = None
        """The workloads mapping indexed (``None``: not known, index the next whole)."""

    def update(
        self,
        snapshot: Snapshot,
        layouts: list[tuple[Node, NodeLayout]],
        places_of: PlacesOf,
        bidder: Bidder,
    ) -> None:
        """Index ``snapshot`` (its changes only, when they apply to what is indexed);
        ``places_of`` resolves slots on ``layouts``."""
        indexed, self._indexed = self._indexed, None  # until done: a failure rebuilds
        changes = snapshot.changes
        workloads = snapshot.workloads
        if (
            changes is None
            or indexed is None
            or changes.since is not indexed
            or changes.workloads is not workloads
            or layouts is not self._layouts
            or not self._apply(workloads, changes.uids, places_of, bidder)
        ):
            self._rebuild(workloads, layouts, places_of, bidder)
        table = self.table
        if table.rows > 2 * len(self.pending) + _CARRIED_SLACK:
            self._fresh_table()
        self._indexed = workloads

    def pending_rows(self) -> npt.NDArray[np.intp]:
        """The pending workloads' rows in the table, ascending."""
        table = self.table
        return np.flatnonzero(table.live[: table.rows])

    def _rebuild(
        self,
        workloads: Mapping[WorkloadUid, Workload],
        layouts: list[tuple[Node, NodeLayout]],
        places_of: PlacesOf,
        bidder: Bidder,
    ) -> None:
        """Index every workload of ``workloads`` (facts of the same objects are reused)."""
        known_running: dict[WorkloadUid, RunningFacts] = (
            {facts[4]: facts for _, facts in self.held if facts is not None}
            if layouts is self._layouts
            else {}
        )
        self._layouts = layouts
        table = self.table
        table.live[: table.rows] = False
        self.pending = {}
        held: list[Held] = []
        held_positions: list[int] = []
        positions: dict[WorkloadUid, int] = {}
        for position, (uid, workload) in enumerate(workloads.items()):
            positions[uid] = position
            if workload.allocation is None:
                self._pend(uid, workload, bidder)
                continue
            carried = known_running.get(uid)
            held.append(_held(workload, carried, places_of))
            held_positions.append(position)
        self.held = held
        self.held_positions = held_positions
        self._positions = positions
        self._next_position = len(positions)

    def _apply(
        self,
        workloads: Mapping[WorkloadUid, Workload],
        uids: tuple[WorkloadUid, ...],
        places_of: PlacesOf,
        bidder: Bidder,
    ) -> bool:
        """Apply the changes of ``uids``; False if the result does not add up to
        ``workloads`` (it is then indexed whole)."""
        table = self.table
        pending = self.pending
        held = self.held
        held_positions = self.held_positions
        positions = self._positions
        for uid in uids:
            carried: RunningFacts | None = None
            row = pending.pop(uid, None)
            if row is not None:
                table.live[row] = False
            position = positions.get(uid)
            if position is not None and row is None:
                at = bisect_left(held_positions, position)
                if at < len(held_positions) and held_positions[at] == position:
                    del held_positions[at]
                    carried = held.pop(at)[1]
            workload = workloads.get(uid)
            if workload is None:
                positions.pop(uid, None)
                continue
            if position is None:
                position = positions[uid] = self._next_position
                self._next_position += 1
            if workload.allocation is None:
                self._pend(uid, workload, bidder)
                continue
            at = bisect_left(held_positions, position)
            held_positions.insert(at, position)
            held.insert(at, _held(workload, carried, places_of))
        return len(pending) + len(held) == len(workloads)

    def _pend(self, uid: WorkloadUid, workload: Workload, bidder: Bidder) -> None:
        """Mark a pending workload's row live (a new row unless its facts are carried)."""
        table = self.table
        facts = table.get(uid)
        if facts is None or facts[0] is not workload:
            facts = table.add(pending_facts(workload, bidder, self.config.veteran_min_attained_s))
        row = self.pending[uid] = facts[15]
        table.live[row] = True

    def _fresh_table(self) -> None:
        """Replace the table with one of the live rows only (in the same row order, so the
        pending rows keep their relative order)."""
        table = self.table
        fresh = PendingTable()
        pending = self.pending
        for row in self.pending_rows().tolist():
            uid = table.uids[row]
            facts = fresh.add(table[uid][:15])
            pending[uid] = facts[15]
            fresh.live[facts[15]] = True
        self.table = fresh


def _held(workload: Workload, carried: RunningFacts | None, places_of: PlacesOf) -> Held:
    """The index entry of a workload that holds GPUs (``carried``: its earlier facts)."""
    if carried is not None and carried[0] is workload:
        return (workload, carried)
    if workload.preempted_at is not None:
        return (workload, None)
    places = places_of(workload)
    return (workload, None if places is None else running_facts(workload, places))


_INDEXES: dict[int, WorkloadIndex] = {}
_INDEXES_MAX = 16


def workload_index(config: PoolConfig) -> WorkloadIndex:
    """The index kept for ``config`` (a new one if none is)."""
    index = _INDEXES.get(id(config))
    if index is None or index.config is not config:
        if len(_INDEXES) >= _INDEXES_MAX:
            _INDEXES.clear()
        index = _INDEXES[id(config)] = WorkloadIndex(config)
    return index


def forget_workload_indexes() -> None:
    _INDEXES.clear()
