"""Free-capacity index of one cycle: per-GPU state and nodes bucketed by free GPUs.

Built from a snapshot at the start of :func:`~gpupool.scheduling.cycle.run_cycle`
and mutated only inside that call (it is the cycle's scratch pad; the
function stays pure). Nodes are kept in ``free_buckets[k]`` (insertion-ordered
dicts used as ordered sets) by their count ``k`` of free whole GPUs, so a
best-fit search for a replica of ``g`` GPUs walks buckets ``g..max`` and
usually stops at the first node, instead of scanning every node.

GPU slot states: FREE (bindable now), RELEASING (held by a workload in its
grace period; claimable by a waiting workload), USED, CLAIMED (reserved this
cycle by a workload that waits for releasing GPUs), SHARED (fractional
inference replicas), UNUSABLE (unhealthy, or on a cordoned node).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import attrgetter

from gpupool.scheduling.config import HealthThresholds
from gpupool.scheduling.health import is_usable
from gpupool.scheduling.model import Node, NodeName, Workload, WorkloadUid

FREE = 0
RELEASING = 1
USED = 2
CLAIMED = 3
UNUSABLE = 4
SHARED = 5


class NodeState:
    """Mutable per-cycle view of one node (slots are positions in ``Node.gpus``)."""

    __slots__ = (
        "bad",
        "best_domain_free",
        "device",
        "domain",
        "domain_size",
        "free",
        "free_d",
        "holders",
        "idx",
        "max_domain_size",
        "mem_left",
        "mem_reserved",
        "name",
        "node",
        "rel",
        "rel_d",
        "schedulable",
        "share_used",
        "slot_of",
        "status",
    )

    def __init__(self, idx: int, node: Node, layout: NodeLayout) -> None:
        """``layout`` is :func:`node_layout` of ``node``."""
        self.idx = idx
        self.node = node
        self.name: NodeName = node.name
        self.schedulable = node.schedulable
        # Shared, read-only lists from the memoised layout:
        self.device = layout.device
        self.slot_of = layout.slot_of
        self.domain = layout.domain
        self.domain_size = layout.domain_size
        self.max_domain_size = layout.max_domain_size
        self.bad = layout.bad
        # This cycle's own state:
        self.status: list[int]
        self.holders: list[int]
        self.share_used: list[float]
        self.mem_left: list[int]
        """Memory a new share may use: measured free, and never past the shares' requests."""
        self.mem_reserved: list[int]
        self.reset(layout)
        self.free_d = [0] * len(self.domain_size)
        self.rel_d = [0] * len(self.domain_size)
        self.free = 0
        self.rel = 0
        self.best_domain_free = 0
        """Most free GPUs inside one NVLink domain (what a one-replica best fit needs)."""

    def reset(self, layout: NodeLayout) -> None:
        """Back to nothing held (the state ``__init__`` leaves), before marking holders."""
        count = len(layout.device)
        self.status = list(layout.status)
        self.holders = [0] * count
        self.share_used = [0.0] * count
        self.mem_left = list(layout.mem_left)
        self.mem_reserved = [0] * count

    def settle(self) -> tuple[int, list[int]]:
        """Once every holder is marked: cap the memory left on shared GPUs, retire the free
        and releasing GPUs of a cordoned node, count. Returns the usable GPUs and the
        shared slots with room for another share (in slot order)."""
        status = self.status
        shared: list[int] = []
        if SHARED not in status:  # the common case, counted in C
            usable = len(status) - status.count(UNUSABLE)
        else:
            usable = 0
            mem_left = self.mem_left
            for slot, state in enumerate(status):
                if state != UNUSABLE:
                    usable += 1
                if state == SHARED:
                    total = self.node.gpus[slot].memory_total_mib
                    mem_left[slot] = min(mem_left[slot], total - self.mem_reserved[slot])
                    if self.schedulable and self.share_used[slot] < 1.0 and mem_left[slot] > 0:
                        shared.append(slot)
        if not self.schedulable:
            # Cordoned: running work stays, nothing new lands, releases help nobody.
            for slot, state in enumerate(status):
                if state in (FREE, RELEASING):
                    status[slot] = UNUSABLE
            usable = 0
        self.recount()
        return usable, shared

    def recount(self) -> None:
        status = self.status
        if len(self.domain_size) == 1:  # one NVLink domain: count in C
            free = status.count(FREE)
            rel = status.count(RELEASING)
            self.free_d = [free]
            self.rel_d = [rel]
            self.free = free
            self.rel = rel
            self.best_domain_free = free
            return
        free_d = [0] * len(self.domain_size)
        rel_d = [0] * len(self.domain_size)
        domain = self.domain
        for slot, state in enumerate(self.status):
            if state == FREE:
                free_d[domain[slot]] += 1
            elif state == RELEASING:
                rel_d[domain[slot]] += 1
        self.free_d = free_d
        self.rel_d = rel_d
        self.free = sum(free_d)
        self.rel = sum(rel_d)
        self.best_domain_free = max(free_d) if free_d else 0

    def replica_capacity(self, gpus_per_replica: int, *, with_releasing: bool) -> int:
        """How many replicas of ``gpus_per_replica`` GPUs fit here (one NVLink domain each)."""
        g = gpus_per_replica
        if g > self.max_domain_size:
            total = self.free + self.rel if with_releasing else self.free
            return total // g
        if len(self.free_d) == 1:
            total = self.free + self.rel if with_releasing else self.free
            return total // g
        if with_releasing:
            return sum((f + r) // g for f, r in zip(self.free_d, self.rel_d, strict=True))
        return sum(f // g for f in self.free_d)


class NodeLayout:
    """What a cycle derives from a :class:`Node` alone (never mutated once built)."""

    __slots__ = (
        "bad",
        "device",
        "domain",
        "domain_size",
        "max_domain_size",
        "mem_left",
        "slot_of",
        "status",
    )

    def __init__(self, node: Node, thresholds: HealthThresholds) -> None:
        gpus = node.gpus
        count = len(gpus)
        self.device = [gpu.index for gpu in gpus]
        self.slot_of = {gpu.index: slot for slot, gpu in enumerate(gpus)}
        domain_ids = sorted({gpu.nvlink_domain for gpu in gpus})
        if len(domain_ids) <= 1:
            self.domain = [0] * count
            self.domain_size = [count]
        else:
            position = {domain_id: d for d, domain_id in enumerate(domain_ids)}
            self.domain = [position[gpu.nvlink_domain] for gpu in gpus]
            self.domain_size = [0] * len(domain_ids)
            for d in self.domain:
                self.domain_size[d] += 1
        self.max_domain_size = max(self.domain_size) if count else 0
        self.bad = [not is_usable(gpu, thresholds) for gpu in gpus]
        self.status = [UNUSABLE if bad else FREE for bad in self.bad]
        self.mem_left = [min(gpu.memory_free_mib, gpu.memory_total_mib) for gpu in gpus]


_LAYOUTS: dict[int, tuple[Node, HealthThresholds, NodeLayout]] = {}
_LAYOUTS_MAX = 100_000


def node_layout(node: Node, thresholds: HealthThresholds) -> NodeLayout:
    """The layout of a node, memoised per (node object, thresholds).

    Nodes are immutable and a new snapshot shares the ones that did not change, so
    most nodes hit this memo from one cycle to the next. It is a cache of a pure
    function (same input, same output), bounded in size; it keeps the nodes it
    knows alive so their ``id`` cannot be reused while cached.
    """
    hit = _LAYOUTS.get(id(node))
    if hit is not None and hit[0] is node and (hit[1] is thresholds or hit[1] == thresholds):
        return hit[2]
    layout = NodeLayout(node, thresholds)
    if len(_LAYOUTS) >= _LAYOUTS_MAX:
        _LAYOUTS.clear()
    _LAYOUTS[id(node)] = (node, thresholds, layout)
    return layout


_NODE_SETS: dict[int, tuple[tuple[Node, ...], HealthThresholds, list[tuple[Node, NodeLayout]]]] = {}
_NODE_SETS_MAX = 16


def ordered_layouts(
    nodes: Iterable[Node], thresholds: HealthThresholds
) -> list[tuple[Node, NodeLayout]]:
    """The nodes by name, each with its layout; memoised per tuple of nodes.

    A simulator (and a snapshot built from the previous one with unchanged nodes) passes
    the same tuple every cycle: it is sorted and looked up once, not once a cycle.
    Same purity rules as :func:`node_layout` (the tuple is kept alive while cached).
    """
    if isinstance(nodes, tuple):
        hit = _NODE_SETS.get(id(nodes))
        if hit is not None and hit[0] is nodes and (hit[1] is thresholds or hit[1] == thresholds):
            return hit[2]
    ordered = sorted(nodes, key=_node_name)
    layouts = [(node, node_layout(node, thresholds)) for node in ordered]
    if isinstance(nodes, tuple):
        if len(_NODE_SETS) >= _NODE_SETS_MAX:
            _NODE_SETS.clear()
        _NODE_SETS[id(nodes)] = (nodes, thresholds, layouts)
    return layouts


_node_name = attrgetter("name")

_Hold = tuple[Workload, tuple[tuple[int, int], ...], int, object]
"""A :data:`~.kept_nodes.Hold` as the index reads it (its places are the second field)."""


def node_limits(nodes: list[NodeState]) -> tuple[int, int]:
    """(most GPUs on one node, smallest largest NVLink domain) of ``nodes``."""
    return (
        max((len(ns.status) for ns in nodes), default=0),
        min((ns.max_domain_size for ns in nodes), default=0),
    )


def resolve_slots(
    by_name: Mapping[NodeName, NodeState], workload: Workload, *, healthy: bool = False
) -> list[tuple[NodeState, int]] | None:
    """A running workload's slots, in allocation order, or ``None`` if one is on a lost
    node or GPU (with ``healthy``: or on an unusable GPU); ``[]`` if it holds none."""
    allocation = workload.allocation
    if allocation is None:
        return []
    slots: list[tuple[NodeState, int]] = []
    for replica in allocation.replicas:
        ns = by_name.get(replica.node)
        if ns is None:
            return None
        slot_of = ns.slot_of
        bad = ns.bad
        for device in replica.gpu_indices:
            slot = slot_of.get(device)
            if slot is None or (healthy and bad[slot]):
                return None
            slots.append((ns, slot))
    return slots


class ClusterState:
    """All nodes of the pool plus the aggregate counters the cycle reads."""

    free_buckets: list[dict[NodeState, None]]
    """Nodes by free whole GPUs (index: the count), each bucket in node order."""
    domain_buckets: list[dict[NodeState, None]]
    """Nodes by ``best_domain_free``: any node in bucket k >= g holds a g-GPU replica."""

    def __init__(self, nodes: Iterable[Node], thresholds: HealthThresholds) -> None:
        """An index of ``nodes`` with nothing held yet: :meth:`occupy` the running work,
        then :meth:`finish_build`."""
        layouts = ordered_layouts(nodes, thresholds)
        states = [NodeState(i, node, layout) for i, (node, layout) in enumerate(layouts)]
        self._start(layouts, states, {ns.name: ns for ns in states}, *node_limits(states))
        self.free_buckets = [{} for _ in range(self.max_gpus_per_node + 1)]
        self.domain_buckets = [{} for _ in range(self.max_gpus_per_node + 1)]

    @classmethod
    def around(
        cls,
        layouts: list[tuple[Node, NodeLayout]],
        nodes: list[NodeState],
        by_name: dict[NodeName, NodeState],
        limits: tuple[int, int],
    ) -> ClusterState:
        """An index over node states already marked and settled (:mod:`.kept_nodes`), with
        no buckets yet: ``free_buckets`` and ``domain_buckets`` are the caller's to set
        (empty ones, then :meth:`add_settled` each node in order, or copies).
        ``limits``: :func:`node_limits` of ``nodes``."""
        state = cls.__new__(cls)
        state._start(layouts, nodes, by_name, *limits)
        return state

    def _start(
        self,
        layouts: list[tuple[Node, NodeLayout]],
        nodes: list[NodeState],
        by_name: dict[NodeName, NodeState],
        max_gpus_per_node: int,
        smallest_domain_limit: int,
    ) -> None:
        self.layouts = layouts
        """The nodes by name with their layouts (the same list object for the same nodes
        and thresholds, see :func:`ordered_layouts`)."""
        self.nodes = nodes
        self.by_name = by_name
        self.max_gpus_per_node = max_gpus_per_node
        self.smallest_domain_limit = smallest_domain_limit
        self.rel_nodes: dict[NodeState, None] = {}
        self.shared: dict[tuple[NodeState, int], None] = {}
        self.free_total = 0
        self.rel_total = 0
        self.usable_total = 0
        self.max_usable_per_node = 0
        self.held: dict[WorkloadUid, list[tuple[NodeState, int]]] = {}
        """Slots of the running workloads, resolved when first read (:meth:`held_slots`)."""
        self.hold_of: Mapping[WorkloadUid, _Hold] = {}
        """Workloads marked from their places (:data:`~.kept_nodes.Hold`), not by
        :meth:`occupy`, by UID: their slots are resolved into :attr:`held` when first read."""
        self.touched: set[NodeState] = set()
        """Nodes changed since the build (:meth:`set_slots`, :meth:`add_share`,
        :func:`~.preemption.release_victim`): what :mod:`.kept_nodes` restores."""
        self.version = 0
        """Bumped on every change, so derived totals can be cached safely."""
        self._capacity_cache: dict[tuple[int, bool], tuple[int, int]] = {}

    # -- building -----------------------------------------------------------------------

    def slots_of(self, workload: Workload) -> list[tuple[NodeState, int]] | None:
        """Slots a running workload holds, or ``None`` if any is on a lost node or GPU."""
        return resolve_slots(self.by_name, workload)

    def held_slots(self, workload: Workload) -> list[tuple[NodeState, int]]:
        """The slots a running workload holds (recorded by :meth:`occupy`, or resolved
        once from :attr:`hold_of`)."""
        uid = workload.uid
        slots = self.held.get(uid)
        if slots is None:
            hold = self.hold_of.get(uid)
            if hold is None:
                return self.slots_of(workload) or []
            nodes = self.nodes
            slots = self.held[uid] = [(nodes[position], slot) for position, slot in hold[1]]
        return slots

    def occupy(self, workload: Workload, slots: list[tuple[NodeState, int]], state: int) -> None:
        """Mark a running workload's slots USED / RELEASING (before :meth:`finish_build`)."""
        self.held[workload.uid] = slots
        share = workload.gpu_share
        if share is None:
            for ns, slot in slots:
                ns.holders[slot] += 1
                current = ns.status[slot]
                if current == FREE or (current == RELEASING and state == USED):
                    ns.status[slot] = state
                elif current == SHARED:
                    ns.status[slot] = USED
            return
        for ns, slot in slots:
            ns.holders[slot] += 1
            ns.share_used[slot] += share.fraction
            ns.mem_reserved[slot] += share.memory_mib
            if ns.status[slot] in (FREE, RELEASING):
                ns.status[slot] = SHARED

    def finish_build(self) -> None:
        """Compute counters and buckets once every allocation is marked."""
        for ns in self.nodes:
            usable, shared = ns.settle()
            self.add_settled(ns, usable, shared)

    def add_settled(self, ns: NodeState, usable: int, shared: list[int]) -> None:
        """Count a settled node (:meth:`NodeState.settle`'s results) into the totals and
        buckets; nodes are added in :attr:`nodes` order."""
        self.usable_total += usable
        self.max_usable_per_node = max(self.max_usable_per_node, usable)
        self.free_buckets[ns.free][ns] = None
        self.domain_buckets[ns.best_domain_free][ns] = None
        self.free_total += ns.free
        if ns.rel:
            self.rel_nodes[ns] = None
            self.rel_total += ns.rel
        for slot in shared:
            self.shared[(ns, slot)] = None

    # -- mutation during the cycle ------------------------------------------------------

    def set_slots(self, ns: NodeState, slots: Iterable[int], new_state: int) -> None:
        """Move whole-GPU slots of one node to ``new_state``, keeping counters exact."""
        self.version += 1
        self.touched.add(ns)
        old_free = ns.free
        old_rel = ns.rel
        status = ns.status
        free_d = ns.free_d
        rel_d = ns.rel_d
        domain = ns.domain
        for slot in slots:
            old = status[slot]
            if old == FREE:
                free_d[domain[slot]] -= 1
            elif old == RELEASING:
                rel_d[domain[slot]] -= 1
            status[slot] = new_state
            if new_state == FREE:
                free_d[domain[slot]] += 1
            elif new_state == RELEASING:
                rel_d[domain[slot]] += 1
        ns.free = sum(free_d)
        ns.rel = sum(rel_d)
        best = max(free_d)
        if best != ns.best_domain_free:
            del self.domain_buckets[ns.best_domain_free][ns]
            self.domain_buckets[best][ns] = None
            ns.best_domain_free = best
        if ns.free != old_free:
            del self.free_buckets[old_free][ns]
            self.free_buckets[ns.free][ns] = None
            self.domain_buckets[ns.best_domain_free][ns] = None
            self.free_total += ns.free - old_free
        if ns.rel != old_rel:
            self.rel_total += ns.rel - old_rel
            if ns.rel:
                self.rel_nodes[ns] = None
            else:
                self.rel_nodes.pop(ns, None)

    def cached_capacity(self, gpus_per_replica: int, *, with_releasing: bool) -> int:
        """Replicas of this size the pool could host now (cached until the next change)."""
        key = (gpus_per_replica, with_releasing)
        cached = self._capacity_cache.get(key)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        total = 0
        for k in range(gpus_per_replica, len(self.free_buckets)):
            for ns in self.free_buckets[k]:
                if with_releasing and ns.rel:
                    continue
                total += ns.replica_capacity(gpus_per_replica, with_releasing=False)
        if with_releasing:
            for ns in self.rel_nodes:
                if ns.schedulable:
                    total += ns.replica_capacity(gpus_per_replica, with_releasing=True)
        self._capacity_cache[key] = (self.version, total)
        return total

    def add_share(self, ns: NodeState, slot: int, fraction: float, memory_mib: int) -> None:
        self.version += 1
        self.touched.add(ns)
        if ns.status[slot] == FREE:
            self.set_slots(ns, (slot,), SHARED)
        ns.share_used[slot] += fraction
        ns.mem_left[slot] -= memory_mib
        ns.holders[slot] += 1
        if ns.share_used[slot] < 1.0 and ns.mem_left[slot] > 0:
            self.shared[(ns, slot)] = None
        else:
            self.shared.pop((ns, slot), None)
