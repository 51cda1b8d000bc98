"""Preemption plan: who may be preempted for whom, and the smallest victim set.

Victim order (total; the first victims tried are the cheapest to stop):

1. lower tier first;
2. borrowers before workloads inside their tenant's guarantee;
3. lower bid first;
4. less work lost since its last checkpoint first;
5. more recently started first;
6. UID.

Who may preempt whom (candidate c, running victim v):

* c's tier above v's: if v borrows, or c is inside its own guarantee (cause
  ``higher-tier``);
* same tier, v borrows and c is inside its guarantee: reclaim (cause
  ``guarantee-reclaim``);
* same tier, both borrow: c's bid above v's bid times ``1 + outbid_margin_ratio``,
  v has run at least ``min_runtime_s`` and has been preempted fewer than
  ``max_outbid_preemptions`` times (cause ``outbid``).

A workload inside its guarantee is therefore never preempted by a borrower,
and never by its own tier. Victims are added in the order above until the
candidate's gang fits, then every victim the gang does not need is given back
(most valuable first), Kueue-style: the set is minimal and as cheap as the
order allows.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gpupool.scheduling.capacity import (
    RELEASING,
    SHARED,
    USED,
    ClusterState,
    NodeState,
)
from gpupool.scheduling.decisions import PreemptionCause
from gpupool.scheduling.model import Tier, Workload, WorkloadUid


@dataclass(slots=True, eq=False)
class Victim:
    workload: Workload
    uid: WorkloadUid
    tier: int
    guaranteed: bool
    bid: float
    gpus: float
    started_at: float
    lost_work_s: float
    slots: list[tuple[NodeState, int]] | None = None

    def order_key(self) -> tuple[int, bool, float, float, float, str]:
        return (
            self.tier,
            self.guaranteed,
            self.bid,
            self.lost_work_s,
            -self.started_at,
            self.uid,
        )


def make_victim(
    workload: Workload, *, guaranteed: bool, bid: float, gpus: float, now: float
) -> Victim:
    allocation = workload.allocation
    assert allocation is not None
    started = allocation.started_at
    checkpoint = workload.last_checkpoint_at
    since = started if checkpoint is None else max(started, checkpoint)
    return Victim(
        workload=workload,
        uid=workload.uid,
        tier=int(workload.tier),
        guaranteed=guaranteed,
        bid=bid,
        gpus=gpus,
        started_at=started,
        lost_work_s=max(0.0, now - since),
    )


VictimClass = tuple[int, bool]
"""(tier, inside guarantee)."""


VictimFacts = tuple[float, float, WorkloadUid, tuple[tuple[str, int], ...]]
"""What a victim's order and reach take from its workload object alone (carried across
cycles, see :func:`victim_facts`): (last checkpoint or start, -start, UID, GPUs per
replica's node as (node name, GPUs))."""

RunningEntry = tuple[Workload, float, bool, "float | None", VictimFacts]
"""A running workload that may be preempted: (workload, GPUs, guaranteed, bid or None, its
:func:`victim_facts`)."""


def victim_facts(workload: Workload) -> VictimFacts:
    """The :data:`VictimFacts` of a running workload."""
    allocation = workload.allocation
    assert allocation is not None
    started = allocation.started_at
    checkpoint = workload.last_checkpoint_at
    since = started if checkpoint is None else max(started, checkpoint)
    nodes = tuple((replica.node, len(replica.gpu_indices)) for replica in allocation.replicas)
    return (since, -started, workload.uid, nodes)


class VictimQueue:
    """One class's victims in victim order, sorted lazily: a heap of decorated entries
    (the position makes every key distinct, so popping gives exactly the sorted order),
    popped and turned into :class:`Victim` only as far as a search reads."""

    __slots__ = ("_heap", "_out", "_tier")

    def __init__(
        self, keyed: list[tuple[float, float, float, WorkloadUid, int, RunningEntry]], *, tier: int
    ) -> None:
        heapq.heapify(keyed)
        self._heap = keyed
        self._out: list[Victim] = []
        self._tier = tier

    def __len__(self) -> int:
        return len(self._out) + len(self._heap)

    def __getitem__(self, index: int) -> Victim:
        out = self._out
        heap = self._heap
        while len(out) <= index:
            bid, lost, neg_started, uid, _, entry = heapq.heappop(heap)
            workload, gpus, guaranteed, _, _ = entry
            out.append(Victim(workload, uid, self._tier, guaranteed, bid, gpus, -neg_started, lost))
        return out[index]


class VictimIndex:
    """Running workloads grouped by (tier, guaranteed), each group sorted in victim order
    the first time a search reaches it (most cycles never sort most groups)."""

    def __init__(
        self,
        groups: dict[VictimClass, list[RunningEntry]],
        *,
        bid_of: Callable[[Workload], float],
        now: float,
        visit_budget: int,
    ) -> None:
        """``groups``: the running workloads of each class (``(int(tier), guaranteed)``)."""
        self._groups: dict[VictimClass, list[RunningEntry]] = dict(groups)
        self._node_class: dict[VictimClass, dict[str, int]] = {}
        self._room: dict[frozenset[VictimClass], dict[NodeState, int]] = {}
        self._useful: dict[tuple[frozenset[VictimClass], int], tuple[set[NodeState], int]] = {}
        self._eligible: dict[tuple[int, bool], frozenset[VictimClass]] = {}
        self._lowest_bids: dict[int, float] = {}
        """The lowest bid of each tier's borrowers (see :meth:`visits_without_victim`)."""
        self._bid_of = bid_of
        self._now = now
        self.classes: dict[VictimClass, VictimQueue] = {}
        self.taken: set[WorkloadUid] = set()
        self.cursor: dict[VictimClass, int] = {}
        self.visits_left = visit_budget
        self.exhausted = False
        """True once a search stopped because the cycle's visit budget ran out."""

    def members(self, key: VictimClass) -> VictimQueue:
        members = self.classes.get(key)
        if members is None:
            members = self._victim_queue(key)
            self.classes[key] = members
        return members

    def _victim_queue(self, key: VictimClass) -> VictimQueue:
        """The class's victims in ``Victim.order_key`` order, built as far as read.

        Decorates each running entry with the key (tier and guaranteed are the class's
        own, so the key leaves them out) in a heap: a class can hold tens of thousands
        of workloads and a cycle usually reads a few of them.
        """
        bid_of = self._bid_of
        now = self._now
        keyed: list[tuple[float, float, float, WorkloadUid, int, RunningEntry]] = []
        for position, entry in enumerate(self._groups.get(key, ())):
            workload, _, _, known_bid, (since, neg_started, uid, _) = entry
            lost = now - since
            keyed.append(
                (
                    bid_of(workload) if known_bid is None else known_bid,
                    lost if lost > 0.0 else 0.0,  # max(0.0, lost), without the call
                    neg_started,
                    uid,
                    position,
                    entry,
                )
            )
        return VictimQueue(keyed, tier=key[0])

    def _class_gpus_by_node(self, key: VictimClass) -> dict[str, int]:
        """GPUs held per node name by the running workloads of one class (cached)."""
        counts = self._node_class.get(key)
        if counts is None:
            counts = {}
            for entry in self._groups.get(key, ()):
                for name, gpus in entry[4][3]:
                    counts[name] = counts.get(name, 0) + gpus
            self._node_class[key] = counts
        return counts

    def eligible_classes(self, *, tier: int, guaranteed: bool) -> frozenset[VictimClass]:
        """Classes a candidate may take victims from (before bid and runtime filters)."""
        key = (tier, guaranteed)
        found = self._eligible.get(key)
        if found is None:
            classes: set[VictimClass] = {(tier, False)}
            for lower in range(int(Tier.LOW), tier):
                classes.add((lower, False))
                if guaranteed:
                    classes.add((lower, True))
            found = self._eligible[key] = frozenset(classes)
        return found

    def room(self, state: ClusterState, classes: frozenset[VictimClass]) -> dict[NodeState, int]:
        """Per schedulable node, an upper bound of the GPUs that could be free for a
        candidate allowed to preempt ``classes``: free + releasing + GPUs those hold.

        Computed once per class set and cycle; still an upper bound as the cycle goes
        on (capacity only shrinks), so it may rule a search out but never in.
        """
        cached = self._room.get(classes)
        if cached is not None:
            return cached
        held: dict[str, int] = {}
        for key in classes:
            for name, gpus in self._class_gpus_by_node(key).items():
                held[name] = held.get(name, 0) + gpus
        room: dict[NodeState, int] = {}
        for ns in state.nodes:
            if not ns.schedulable:
                continue
            total = ns.free + ns.rel + held.get(ns.name, 0)
            if total:
                room[ns] = min(total, len(ns.status))
        self._room[classes] = room
        return room

    def useful_nodes(
        self, state: ClusterState, classes: frozenset[VictimClass], g: int
    ) -> tuple[set[NodeState], int]:
        """Nodes where preempting ``classes`` could make room for a ``g``-GPU replica, and
        how many such replicas at most (cached per class set and size for the cycle)."""
        key = (classes, g)
        cached = self._useful.get(key)
        if cached is None:
            room = self.room(state, classes)
            useful = {ns for ns, gpus in room.items() if gpus >= g}
            cached = (useful, sum(room[ns] // g for ns in useful))
            self._useful[key] = cached
        return cached

    def visits_without_victim(self, *, tier: int, bid: float, factor: float) -> int | None:
        """For a borrower (a candidate outside its guarantee) bidding ``bid``: how many
        workloads :meth:`walk` would visit (0 or 1) before it stops without a victim, when
        it surely finds none; ``None`` when it may find one.

        It finds none when no lower tier holds GPUs and even the lowest bid of the
        candidate's own tier, times ``factor``, is at least ``bid``: the first same-tier
        borrower it visits stops it (the bids only rise along the victim order). Most
        searches of a replay end that way; answering them without sorting the class saves
        the cycle's first sort when no other search needs it.
        """
        groups = self._groups
        for lower in range(int(Tier.LOW), tier):
            if groups.get((lower, False)):
                return None
        group = groups.get((tier, False))
        if not group:
            return 0
        lowest = self._lowest_bids.get(tier)
        if lowest is None:
            bid_of = self._bid_of
            lowest = self._lowest_bids[tier] = min(
                bid_of(entry[0]) if entry[3] is None else entry[3] for entry in group
            )
        if lowest * factor < bid:
            return None
        taken = self.taken
        for entry in group:
            if entry[4][2] not in taken:
                return 1  # the first one it visits (not taken) stops it
        return 0

    def walk(
        self,
        *,
        tier: int,
        guaranteed: bool,
        bid: float,
        now: float,
        min_runtime_s: float,
        outbid_margin_ratio: float = 0.0,
        max_outbid_preemptions: int | None = None,
    ) -> Iterator[tuple[Victim, PreemptionCause]]:
        """Eligible victims for a candidate, in victim order, within the visit budget."""
        factor = 1.0 + outbid_margin_ratio
        cap = max_outbid_preemptions
        for lower in range(int(Tier.LOW), tier):
            yield from self._members((lower, False), PreemptionCause.HIGHER_TIER)
            if guaranteed:
                yield from self._members((lower, True), PreemptionCause.HIGHER_TIER)
        if guaranteed:
            yield from self._members((tier, False), PreemptionCause.GUARANTEE_RECLAIM)
            return
        for victim, cause in self._members((tier, False), PreemptionCause.OUTBID):
            if victim.bid * factor >= bid:
                return
            if now - victim.started_at >= min_runtime_s and (
                cap is None or victim.workload.preemptions < cap
            ):
                yield victim, cause

    def _members(
        self, key: tuple[int, bool], cause: PreemptionCause
    ) -> Iterator[tuple[Victim, PreemptionCause]]:
        members = self.members(key)
        if not members:
            return
        taken = self.taken
        start = self.cursor.get(key, 0)
        while start < len(members) and members[start].uid in taken:
            start += 1
        self.cursor[key] = start
        for position in range(start, len(members)):
            if self.visits_left <= 0:
                self.exhausted = True
                return
            self.visits_left -= 1
            victim = members[position]
            if victim.uid not in taken:
                yield victim, cause


LOOKAHEAD = 64
"""Extra victims examined after the first fit of a one-replica candidate."""


class _Trial:
    """GPUs freed by a tentative victim set, kept incrementally per node and domain."""

    def __init__(self, state: ClusterState, gpus_per_replica: int, replicas: int) -> None:
        self.state = state
        self.g = gpus_per_replica
        self.replicas = replicas
        self.hits: dict[tuple[NodeState, int], int] = {}
        self.freed: dict[NodeState, list[int]] = {}
        self.fit_nodes: dict[NodeState, None] = {}
        """Nodes where one more replica fits thanks to the victims (single replicas)."""
        self.delta = 0
        """Replicas the victims add to the pool's capacity (gangs)."""
        self.base_total = (
            state.cached_capacity(gpus_per_replica, with_releasing=True) if replicas > 1 else 0
        )

    def capacity(self, ns: NodeState, extra: list[int]) -> int:
        g = self.g
        if g > ns.max_domain_size or len(extra) == 1:
            return (ns.free + ns.rel + sum(extra)) // g
        return sum((f + r + e) // g for f, r, e in zip(ns.free_d, ns.rel_d, extra, strict=True))

    def _step(self, ns: NodeState, slot: int, step: int) -> None:
        extra = self.freed.get(ns)
        if extra is None:
            extra = self.freed[ns] = [0] * len(ns.free_d)
        g = self.g
        if g > ns.max_domain_size or len(extra) == 1:
            room = ns.free + ns.rel + sum(extra)
            before = room // g
            after = (room + step) // g
            extra[0 if len(extra) == 1 else ns.domain[slot]] += step
        else:
            d = ns.domain[slot]
            room = ns.free_d[d] + ns.rel_d[d] + extra[d]
            extra[d] += step
            before = room // g
            after = (room + step) // g
        if after == before:
            return
        self.delta += after - before
        if after > before or self.capacity(ns, extra) > 0:
            self.fit_nodes[ns] = None
        else:
            self.fit_nodes.pop(ns, None)

    def add(self, victim: Victim) -> None:
        hits = self.hits
        for ns, slot in victim_slots(self.state, victim):
            count = hits.get((ns, slot), 0) + 1
            hits[(ns, slot)] = count
            if count == ns.holders[slot]:
                self._step(ns, slot, 1)

    def remove(self, victim: Victim) -> None:
        hits = self.hits
        for ns, slot in victim_slots(self.state, victim):
            count = hits[(ns, slot)]
            if count == ns.holders[slot]:
                self._step(ns, slot, -1)
            hits[(ns, slot)] = count - 1

    def feasible(self) -> bool:
        if self.replicas == 1:
            return bool(self.fit_nodes)
        return self.base_total + self.delta >= self.replicas

    def walk_until_fit(
        self,
        candidates: Iterator[tuple[Victim, PreemptionCause]],
        useful: set[NodeState],
    ) -> list[tuple[Victim, PreemptionCause]] | None:
        """Add victims in order (skipping those on nodes that cannot help) until it fits.

        One replica: once it fits somewhere, look a little further (as many victims
        again, at least ``LOOKAHEAD``) for a node that needs fewer victims, and take the
        node whose minimal set is smallest (ties: the one found first, i.e. the
        cheapest in victim order). Gangs: the first set that fits, made minimal.
        """
        chosen: list[tuple[Victim, PreemptionCause]] = []
        state = self.state
        stop_at: int | None = None
        for pair in candidates:
            slots = pair[0].slots
            if slots is None:
                # Most victims sit on nodes that cannot help: rule those out on the slots
                # they hold before filtering them into releasable ones.
                for ns, _ in state.held_slots(pair[0].workload):
                    if ns in useful:
                        break
                else:
                    continue
                slots = victim_slots(state, pair[0])
            for ns, _ in slots:
                if ns in useful:
                    break
            else:
                continue
            self.add(pair[0])
            chosen.append(pair)
            if stop_at is None:
                if self.feasible():
                    if self.replicas != 1:
                        return self._prune(chosen)
                    stop_at = len(chosen) + max(LOOKAHEAD, len(chosen))
            elif len(chosen) >= stop_at:
                break
        if stop_at is None:
            return None
        best: list[tuple[Victim, PreemptionCause]] | None = None
        by_node = _by_node(state, chosen)
        for target in list(self.fit_nodes):
            on_node = by_node.get(target, [])
            single = _Trial(state, self.g, 1)
            prefix: list[tuple[Victim, PreemptionCause]] = []
            for pair in on_node:
                single.add(pair[0])
                prefix.append(pair)
                if single.feasible():
                    break
            if not single.feasible():
                continue
            candidate = single._prune(prefix)
            if best is None or len(candidate) < len(best):
                best = candidate
        return best

    def _prune(
        self, chosen: list[tuple[Victim, PreemptionCause]]
    ) -> list[tuple[Victim, PreemptionCause]]:
        """Give back, most valuable first, every victim the gang does not need."""
        spared: set[int] = set()
        for position in range(len(chosen) - 1, -1, -1):
            victim = chosen[position][0]
            self.remove(victim)
            if self.feasible():
                spared.add(position)
            else:
                self.add(victim)
        return [pair for position, pair in enumerate(chosen) if position not in spared]


def _by_node(
    state: ClusterState, chosen: list[tuple[Victim, PreemptionCause]]
) -> dict[NodeState, list[tuple[Victim, PreemptionCause]]]:
    """The chosen victims holding a releasable GPU on each node, in the order chosen."""
    by_node: dict[NodeState, list[tuple[Victim, PreemptionCause]]] = {}
    for pair in chosen:
        last: NodeState | None = None
        for ns, _ in victim_slots(state, pair[0]):
            if ns is last:
                continue
            last = ns
            members = by_node.setdefault(ns, [])
            if not members or members[-1] is not pair:
                members.append(pair)
    return by_node


def victim_slots(state: ClusterState, victim: Victim) -> list[tuple[NodeState, int]]:
    """The victim's GPU slots whose release can help someone (memoised on the victim)."""
    slots = victim.slots
    if slots is None:
        slots = [
            (ns, slot)
            for ns, slot in state.held_slots(victim.workload)
            if ns.schedulable and ns.status[slot] in (USED, SHARED)
        ]
        victim.slots = slots
    return slots


def find_victims(
    state: ClusterState,
    index: VictimIndex,
    *,
    tier: int,
    guaranteed: bool,
    bid: float,
    gpus_per_replica: int,
    replicas: int,
    now: float,
    min_runtime_s: float,
    outbid_margin_ratio: float = 0.0,
    max_outbid_preemptions: int | None = None,
) -> list[tuple[Victim, PreemptionCause]] | None:
    """The victims to preempt so the gang fits, or ``None`` when no eligible set suffices."""
    g = max(1, gpus_per_replica)
    if index.visits_left <= 0:
        index.exhausted = True
        return None
    useful, reachable = index.useful_nodes(
        state, index.eligible_classes(tier=tier, guaranteed=guaranteed), g
    )
    if reachable < replicas:
        return None  # even preempting every eligible workload would not make room
    if not guaranteed:
        visits = index.visits_without_victim(tier=tier, bid=bid, factor=1.0 + outbid_margin_ratio)
        if visits is not None:
            index.visits_left -= visits  # at least 1 is left (checked above): not exhausted
            return None
    trial = _Trial(state, g, replicas)
    walk = index.walk(
        tier=tier,
        guaranteed=guaranteed,
        bid=bid,
        now=now,
        min_runtime_s=min_runtime_s,
        outbid_margin_ratio=outbid_margin_ratio,
        max_outbid_preemptions=max_outbid_preemptions,
    )
    return trial.walk_until_fit(walk, useful)


def release_victim(state: ClusterState, victim: Victim) -> None:
    """Mark a chosen victim's GPUs as releasing (claimable once its grace period ends)."""
    for ns, slot in state.held_slots(victim.workload):
        if ns.status[slot] not in (USED, SHARED):
            continue
        state.touched.add(ns)
        ns.holders[slot] -= 1
        if ns.holders[slot] <= 0:
            state.shared.pop((ns, slot), None)
            if ns.schedulable:
                state.set_slots(ns, (slot,), RELEASING)
