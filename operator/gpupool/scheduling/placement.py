"""Placement of one workload's replicas on the cycle's free-capacity index.

Rules (SCHEDULING.md, step 6):

* gangs are all-or-nothing: a plan either holds every replica or nothing is taken;
* training packs: the whole gang on one node when it fits (best fit: the node with
  the fewest free GPUs that can hold it, so whole nodes stay free for big jobs,
  FGD-style); otherwise the nodes with the most room first (fewest nodes) and the
  tail on the best-fitting node;
* one replica's GPUs stay inside one NVLink domain when the replica fits in one
  (best-fit domain, lowest device indices first);
* inference spreads: each replica on a different node while distinct nodes fit;
* fractional inference replicas share a GPU only where compute share and
  measured free memory allow (best fit on already shared GPUs, else a free GPU).

A plan is taken tentatively (slots become CLAIMED) so that later replicas of the
same gang see the capacity already used; :meth:`Plan.undo` gives it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gpupool.scheduling.capacity import (
    CLAIMED,
    FREE,
    RELEASING,
    SHARED,
    ClusterState,
    NodeState,
)
from gpupool.scheduling.decisions import Placement
from gpupool.scheduling.model import GpuShare, ReplicaPlacement

_EPSILON = 1e-9


@dataclass(slots=True)
class Plan:
    """Replicas placed tentatively; ``needs_release`` when any GPU is still releasing."""

    replicas: list[tuple[NodeState, list[int]]] = field(default_factory=list)
    needs_release: bool = False
    _undo_whole: list[tuple[NodeState, int, int]] = field(default_factory=list)
    _undo_share: list[tuple[NodeState, int, bool, GpuShare]] = field(default_factory=list)

    def placement(self) -> Placement:
        return tuple(
            ReplicaPlacement(node=ns.name, gpu_indices=tuple(ns.device[s] for s in slots))
            for ns, slots in self.replicas
        )

    def undo(self, state: ClusterState) -> None:
        for ns, slot, was_free, share in reversed(self._undo_share):
            state.touched.add(ns)
            ns.share_used[slot] -= share.fraction
            ns.mem_left[slot] += share.memory_mib
            ns.holders[slot] -= 1
            if was_free:
                state.shared.pop((ns, slot), None)
                state.set_slots(ns, (slot,), FREE)
            else:
                state.shared[(ns, slot)] = None
        for ns, slot, old in reversed(self._undo_whole):
            state.set_slots(ns, (slot,), old)
        self.replicas.clear()
        self._undo_whole.clear()
        self._undo_share.clear()


def place_whole(
    state: ClusterState,
    *,
    gpus_per_replica: int,
    replicas: int,
    spread: bool,
    with_releasing: bool,
) -> Plan | None:
    """Place ``replicas`` replicas of ``gpus_per_replica`` whole GPUs, or ``None``."""
    g = gpus_per_replica
    plan = Plan()
    remaining = replicas
    used_nodes: set[NodeState] = set()
    max_k = state.max_gpus_per_node
    while remaining > 0:
        if spread:
            ns = _best_fit(state, g, 1, with_releasing, used_nodes)
            if ns is None:
                ns = _best_fit(state, g, 1, with_releasing, ())
            count = 1
        else:
            ns = None
            if remaining * g <= max_k:
                ns = _best_fit(state, g, remaining, with_releasing, ())
            if ns is not None:
                count = remaining
            else:
                ns = _largest(state, g, with_releasing)
                count = (
                    0
                    if ns is None
                    else min(remaining, ns.replica_capacity(g, with_releasing=with_releasing))
                )
        if ns is None or count <= 0:
            plan.undo(state)
            return None
        for _ in range(count):
            slots = _pick_slots(ns, g, with_releasing)
            for slot in slots:
                old = ns.status[slot]
                if old == RELEASING:
                    plan.needs_release = True
                plan._undo_whole.append((ns, slot, old))
            state.set_slots(ns, slots, CLAIMED)
            plan.replicas.append((ns, slots))
        used_nodes.add(ns)
        remaining -= count
    return plan


def place_shares(
    state: ClusterState, *, share: GpuShare, replicas: int, spread: bool
) -> Plan | None:
    """Place fractional replicas on shared GPUs (best fit) or on free GPUs, or ``None``."""
    plan = Plan()
    used_nodes: set[NodeState] = set()
    for _ in range(replicas):
        pick = _best_shared(state, share, used_nodes if spread else ())
        if pick is None and spread:
            pick = _best_shared(state, share, ())
        if pick is None:
            plan.undo(state)
            return None
        ns, slot = pick
        was_free = ns.status[slot] == FREE
        state.add_share(ns, slot, share.fraction, share.memory_mib)
        plan._undo_share.append((ns, slot, was_free, share))
        plan.replicas.append((ns, [slot]))
        used_nodes.add(ns)
    return plan


def total_capacity(state: ClusterState, gpus_per_replica: int, *, with_releasing: bool) -> int:
    """Replicas of this size the whole pool could host now (sums nodes with room)."""
    return state.cached_capacity(gpus_per_replica, with_releasing=with_releasing)


# -- searches -----------------------------------------------------------------------------


def _best_fit(
    state: ClusterState,
    g: int,
    count: int,
    with_releasing: bool,
    exclude: set[NodeState] | tuple[()],
) -> NodeState | None:
    """The node with the least room that still holds ``count`` replicas of ``g`` GPUs.

    With ``with_releasing``, nodes whose releasing GPUs make the difference come first
    (claiming what preemptions free is the point of that search).
    """
    if with_releasing:
        best: NodeState | None = None
        best_room = math.inf
        need = g * count  # fewer GPUs than this can never hold the replicas: skip early
        for ns in state.rel_nodes:
            room = ns.free + ns.rel
            if room < need or room >= best_room or ns in exclude or not ns.schedulable:
                continue
            if ns.replica_capacity(g, with_releasing=True) >= count:
                best, best_room = ns, room
        if best is not None:
            return best
    if count == 1:
        domain_buckets = state.domain_buckets
        for k in range(g, len(domain_buckets)):
            for ns in domain_buckets[k]:
                if exclude and ns in exclude:
                    continue
                if with_releasing and ns.rel:
                    continue
                return ns
        if g <= state.smallest_domain_limit:
            return None  # no node lets a replica span NVLink domains for this size
    buckets = state.free_buckets
    for k in range(count * g, len(buckets)):
        for ns in buckets[k]:
            if exclude and ns in exclude:
                continue
            if with_releasing and ns.rel:
                continue
            if ns.replica_capacity(g, with_releasing=False) >= count:
                return ns
    return None


def _largest(state: ClusterState, g: int, with_releasing: bool) -> NodeState | None:
    """The node that holds the most replicas of ``g`` GPUs (ties: fewest free GPUs)."""
    best: NodeState | None = None
    best_cap = 0
    buckets = state.free_buckets
    for k in range(len(buckets) - 1, g - 1, -1):
        if k // g <= best_cap:
            break
        for ns in buckets[k]:
            if with_releasing and ns.rel:
                continue
            cap = ns.replica_capacity(g, with_releasing=False)
            if cap > best_cap:
                best, best_cap = ns, cap
                if cap == k // g:
                    break
    if with_releasing:
        for ns in state.rel_nodes:
            if not ns.schedulable:
                continue
            cap = ns.replica_capacity(g, with_releasing=True)
            if cap > best_cap:
                best, best_cap = ns, cap
    return best


def _pick_slots(ns: NodeState, g: int, with_releasing: bool) -> list[int]:
    """GPU slots for one replica on ``ns``: best-fit NVLink domain, free before releasing."""
    status = ns.status
    if g > ns.max_domain_size:
        domains: list[int] | None = None
    else:
        best_d = -1
        best_room = math.inf
        for d, free in enumerate(ns.free_d):
            room = free + ns.rel_d[d] if with_releasing else free
            if g <= room < best_room:
                best_d, best_room = d, room
        domains = [best_d]
    picked: list[int] = []
    wanted = (FREE, RELEASING) if with_releasing else (FREE,)
    domain = ns.domain
    for wanted_state in wanted:
        for slot, state in enumerate(status):
            if state == wanted_state and (domains is None or domain[slot] in domains):
                picked.append(slot)
                if len(picked) == g:
                    return picked
    raise AssertionError(f"node {ns.name} has no room for {g} GPUs")  # pragma: no cover


def _best_shared(
    state: ClusterState, share: GpuShare, exclude: set[NodeState] | tuple[()]
) -> tuple[NodeState, int] | None:
    best: tuple[NodeState, int] | None = None
    best_left = math.inf
    for ns, slot in state.shared:
        if exclude and ns in exclude:
            continue
        left = 1.0 - ns.share_used[slot] - share.fraction
        if left >= -_EPSILON and ns.mem_left[slot] >= share.memory_mib and left < best_left:
            best, best_left = (ns, slot), left
    if best is not None:
        return best
    buckets = state.domain_buckets
    for k in range(1, len(buckets)):
        for ns in buckets[k]:
            if exclude and ns in exclude:
                continue
            for slot, slot_state in enumerate(ns.status):
                if slot_state == FREE and ns.mem_left[slot] >= share.memory_mib:
                    return ns, slot
    return None


__all__ = ["SHARED", "Plan", "place_shares", "place_whole", "total_capacity"]
