"""The capacity index's starting point, kept from one cycle to the next.

Why. Every cycle used to build its :class:`~.capacity.ClusterState` from nothing:
a :class:`~.capacity.NodeState` per node, every running workload's GPUs marked
slot by slot, then every node counted. Between two cycles only the few nodes
where work started, finished or began releasing change, so most of that work
repeated the previous cycle's.

What is kept. A :class:`KeptNodes` per node layout list (the same nodes and
health thresholds) holds the node states as they stood once every holder was
marked and the nodes settled (the *base*), a copy of each node's mutable lists
(its *image*), and the :data:`Hold` sequence that produced them. A node's base
is a function of its layout and of the holds on it, in order (marking is
order-dependent for shared GPUs). The next cycle, given its own holds:

* nodes touched by a hold that came or went are reset and marked again from
  their holds (all nodes, should the common holds appear in another order);
* every other node already has its base, unless the previous cycle changed it
  while placing (the cycle's scratch pad): those are restored from the image,
  found by comparing their lists with it (nothing has to log its writes).

The result is exactly the state a cold build gives (tests build both). Like
:func:`~.capacity.node_layout` this is a cache of a pure function: the node
states are lent to one cycle at a time (:meth:`KeptNodes.lend`) and
:meth:`KeptNodes.give_back` returns them; a cycle that starts while they are
lent (re-entrancy) builds its own.
"""

from __future__ import annotations

from itertools import compress
from operator import is_, not_

from gpupool.scheduling.capacity import (
    FREE,
    RELEASING,
    SHARED,
    USED,
    ClusterState,
    NodeLayout,
    NodeState,
    node_limits,
    resolve_slots,
)
from gpupool.scheduling.config import HealthThresholds
from gpupool.scheduling.model import Node, Workload, WorkloadUid

Hold = tuple[Workload, tuple[tuple[int, int], ...], int, frozenset[int]]
"""A workload holding GPUs: (workload, its slots as (position in the node list, slot),
``USED`` or ``RELEASING``, the positions of its nodes). Marked as
:meth:`~.capacity.ClusterState.occupy` marks it."""


def make_hold(workload: Workload, places: tuple[tuple[int, int], ...], state: int) -> Hold:
    return (workload, places, state, frozenset(position for position, _ in places))


_Image = tuple[
    list[int],
    list[int],
    list[float],
    list[int],
    list[int],
    list[int],
    int,
    int,
    int,
    int,
    list[int],
]
"""A settled node's mutable state: (status, holders, share_used, mem_left, free_d, rel_d,
free, rel, best_domain_free, usable GPUs, shared slots with room)."""


class KeptNodes:
    """The base node states of one node layout list (see the module)."""

    __slots__ = (
        "_by_name",
        "_held",
        "_hold_of",
        "_images",
        "_lent",
        "_limits",
        "_nodes",
        "_totals",
        "_touched",
        "holds",
        "layouts",
        "releasing",
    )

    def __init__(self, layouts: list[tuple[Node, NodeLayout]]) -> None:
        self.layouts = layouts
        self._nodes = [NodeState(i, node, layout) for i, (node, layout) in enumerate(layouts)]
        self._by_name = {ns.name: ns for ns in self._nodes}
        self._limits = node_limits(self._nodes)
        self._images: list[_Image | None] = [None] * len(self._nodes)
        self.holds: list[Hold] | None = None
        """The holds the base was built from (``None``: not built yet)."""
        self.releasing: dict[WorkloadUid, Hold] = {}
        """The last cycle's holds of terminating workloads by UID, for the next cycle to
        reuse (a hit only for the very same workload object); replaced every cycle."""
        self._lent = False
        self._touched: set[NodeState] = set()
        """Nodes the last cycle changed while placing (restored from their images)."""
        self._hold_of: dict[WorkloadUid, Hold] = {}
        """This cycle's holds by UID (kept up to date as holds come and go)."""
        self._held: dict[WorkloadUid, list[tuple[NodeState, int]]] = {}
        """Slots resolved from those holds (the node states are kept too), lent to the
        index as ``ClusterState.held``; an entry goes when its hold goes."""
        self._totals: _Totals | None = None
        """The buckets and totals of the settled nodes (``None``: to count again)."""

    @property
    def nodes(self) -> list[NodeState]:
        """The node states (to read their constant fields; their counts are lent with the
        state)."""
        return self._nodes

    def places_of(self, workload: Workload, *, healthy: bool) -> tuple[tuple[int, int], ...] | None:
        """A running workload's slots as (position, slot), in allocation order, or ``None``
        if one is on a lost node or GPU (with ``healthy``: or on an unusable GPU); the
        slots :func:`~.capacity.resolve_slots` finds."""
        slots = resolve_slots(self._by_name, workload, healthy=healthy)
        if slots is None:
            return None
        return tuple((ns.idx, slot) for ns, slot in slots)

    def lend(
        self, nodes: tuple[Node, ...], thresholds: HealthThresholds, holds: list[Hold]
    ) -> ClusterState:
        """The capacity index for ``holds`` (in the snapshot's order), every holder marked
        and every node settled; :meth:`give_back` it after the cycle."""
        self._lent = True
        previous = self.holds
        self.holds = None  # until this returns: a failure here rebuilds everything next time
        changed: set[int]
        if previous is None:
            changed = set(range(len(self._nodes)))
            self._index_holds(holds)
        elif len(previous) == len(holds) and all(map(is_, previous, holds)):
            changed = set()
        else:
            diff = _diff(previous, holds)
            if diff is None:
                changed = set(range(len(self._nodes)))
                self._index_holds(holds)
            else:
                changed = set()
                gone, came = diff
                hold_of = self._hold_of
                held = self._held
                for hold in gone:
                    changed.update(hold[3])
                    uid = hold[0].uid
                    if hold_of.get(uid) is hold:
                        del hold_of[uid]
                        held.pop(uid, None)
                for hold in came:
                    changed.update(hold[3])
                    uid = hold[0].uid
                    hold_of[uid] = hold
                    held.pop(uid, None)
        images = self._images
        for ns in self._touched:
            if ns.idx not in changed:
                image = images[ns.idx]
                assert image is not None
                _restore(ns, image)
        self._touched = set()
        if changed:
            self._mark(changed, holds)
            for position in changed:
                ns = self._nodes[position]
                usable, shared = ns.settle()
                images[position] = (
                    ns.status.copy(),
                    ns.holders.copy(),
                    ns.share_used.copy(),
                    ns.mem_left.copy(),
                    ns.free_d.copy(),
                    ns.rel_d.copy(),
                    ns.free,
                    ns.rel,
                    ns.best_domain_free,
                    usable,
                    shared,
                )
            self._totals = None
        state = ClusterState.around(self.layouts, self._nodes, self._by_name, self._limits)
        state.hold_of = self._hold_of
        state.held = self._held
        totals = self._totals
        if totals is None:
            state.free_buckets = [{} for _ in range(state.max_gpus_per_node + 1)]
            state.domain_buckets = [{} for _ in range(state.max_gpus_per_node + 1)]
            _add_all(state, self._nodes, images)
            self._totals = _Totals(state)
        else:
            totals.copy_to(state)
        self.holds = holds
        return state

    def _index_holds(self, holds: list[Hold]) -> None:
        """Index ``holds`` by UID afresh (their resolved slots are resolved again)."""
        self._hold_of = {hold[0].uid: hold for hold in holds}
        self._held = {}

    def give_back(self, state: ClusterState | None) -> None:
        """The lent node states are free again; ``state`` (the index lent, if it was)
        says which nodes the cycle changed."""
        if state is not None:
            self._touched = state.touched
        elif self._lent:
            self.holds = None  # not known what changed: rebuild everything next time
        self._lent = False

    @property
    def lent(self) -> bool:
        return self._lent

    def _mark(self, changed: set[int], holds: list[Hold]) -> None:
        """Reset the ``changed`` nodes and mark their holds on them, in order."""
        nodes = self._nodes
        layouts = self.layouts
        for position in changed:
            nodes[position].reset(layouts[position][1])
        everything = len(changed) == len(nodes)
        for workload, places, code, positions in holds:
            if not everything and changed.isdisjoint(positions):
                continue
            share = workload.gpu_share
            for position, slot in places:
                if not everything and position not in changed:
                    continue
                ns = nodes[position]
                ns.holders[slot] += 1
                status = ns.status
                current = status[slot]
                if share is None:  # ClusterState.occupy of whole GPUs
                    if current == FREE or (current == RELEASING and code == USED):
                        status[slot] = code
                    elif current == SHARED:
                        status[slot] = USED
                else:
                    ns.share_used[slot] += share.fraction
                    ns.mem_reserved[slot] += share.memory_mib
                    if current in (FREE, RELEASING):
                        status[slot] = SHARED


def _diff(previous: list[Hold], holds: list[Hold]) -> tuple[list[Hold], list[Hold]] | None:
    """The holds that went and came (by identity); ``None`` if the holds both lists share
    are not in the same order (every node is then marked again). (Filters in C:
    ``compress`` over membership flags, not a Python loop per hold.)"""
    ids_before = list(map(id, previous))
    ids_now = list(map(id, holds))
    before = set(ids_before)
    now = set(ids_now)
    stays = list(map(now.__contains__, ids_before))
    stayed = list(map(before.__contains__, ids_now))
    kept_before = list(compress(previous, stays))
    kept_now = list(compress(holds, stayed))
    if len(kept_before) != len(kept_now) or not all(map(is_, kept_before, kept_now)):
        return None
    return list(compress(previous, map(not_, stays))), list(compress(holds, map(not_, stayed)))


def _add_all(state: ClusterState, nodes: list[NodeState], images: list[_Image | None]) -> None:
    """:meth:`~.capacity.ClusterState.add_settled` of every node in order, inlined (it
    runs in most cycles: one call fewer per node)."""
    free_buckets = state.free_buckets
    domain_buckets = state.domain_buckets
    rel_nodes = state.rel_nodes
    shared = state.shared
    usable_total = free_total = rel_total = most_usable = 0
    for ns, image in zip(nodes, images, strict=True):
        assert image is not None
        usable = image[9]
        usable_total += usable
        most_usable = max(most_usable, usable)
        free = ns.free
        free_buckets[free][ns] = None
        domain_buckets[ns.best_domain_free][ns] = None
        free_total += free
        if ns.rel:
            rel_nodes[ns] = None
            rel_total += ns.rel
        for slot in image[10]:
            shared[(ns, slot)] = None
    state.usable_total = usable_total
    state.free_total = free_total
    state.rel_total = rel_total
    state.max_usable_per_node = most_usable


class _Totals:
    """A settled index's buckets and totals, copied into the next index while no node's
    image changes (each node back at its image adds up to the same)."""

    __slots__ = ("domain_buckets", "free_buckets", "numbers", "rel_nodes", "shared")

    def __init__(self, state: ClusterState) -> None:
        self.free_buckets = [list(bucket) for bucket in state.free_buckets]
        self.domain_buckets = [list(bucket) for bucket in state.domain_buckets]
        self.rel_nodes = list(state.rel_nodes)
        self.shared = list(state.shared)
        self.numbers = (
            state.free_total,
            state.rel_total,
            state.usable_total,
            state.max_usable_per_node,
        )

    def copy_to(self, state: ClusterState) -> None:
        state.free_buckets = [dict.fromkeys(bucket) for bucket in self.free_buckets]
        state.domain_buckets = [dict.fromkeys(bucket) for bucket in self.domain_buckets]
        state.rel_nodes = dict.fromkeys(self.rel_nodes)
        state.shared = dict.fromkeys(self.shared)
        (
            state.free_total,
            state.rel_total,
            state.usable_total,
            state.max_usable_per_node,
        ) = self.numbers


def _restore(ns: NodeState, image: _Image) -> None:
    """Put back a node the previous cycle changed while placing."""
    ns.status = image[0].copy()
    ns.holders = image[1].copy()
    ns.share_used = image[2].copy()
    ns.mem_left = image[3].copy()
    ns.free_d = image[4].copy()
    ns.rel_d = image[5].copy()
    ns.free = image[6]
    ns.rel = image[7]
    ns.best_domain_free = image[8]


_KEPT: dict[int, KeptNodes] = {}
_KEPT_MAX = 4


def kept_nodes(layouts: list[tuple[Node, NodeLayout]]) -> KeptNodes:
    """The kept base of a node layout list; a fresh, unkept one if it is lent now."""
    kept = _KEPT.get(id(layouts))
    if kept is not None and kept.layouts is layouts:
        if not kept.lent:
            return kept
        return KeptNodes(layouts)
    kept = KeptNodes(layouts)
    if len(_KEPT) >= _KEPT_MAX:
        _KEPT.clear()
    _KEPT[id(layouts)] = kept
    return kept


def forget_kept_nodes() -> None:
    _KEPT.clear()
