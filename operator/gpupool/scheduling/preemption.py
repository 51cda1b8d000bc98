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
* same tier, both borrow: c's bid strictly higher and v has run at least
  ``min_runtime_s`` (cause ``outbid``).

A workload inside its guarantee is therefore never preempted by a borrower,
and never by its own tier. Victims are added in the order above until the
candidate's gang fits, then every victim the gang does not need is given back
(most valuable first), Kueue-style: the set is minimal and as cheap as the
order allows.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
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
from gpupool.scheduling.placement import total_capacity


@dataclass(slots=True)
class Victim:
    workload: Workload
    uid: WorkloadUid
    tier: int
    guaranteed: bool
    bid: float
    gpus: float
    started_at: float
    lost_work_s: float

    def order_key(self) -> tuple[int, bool, float, float, float, str]:
        return (
            self.tier,
            self.guaranteed,
            self.bid,
            self.lost_work_s,
            -self.started_at,
            self.uid,
        )


def make_victim(workload: Workload, *, guaranteed: bool, bid: float, now: float) -> Victim:
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
        gpus=workload.allocated_gpus(),
        started_at=started,
        lost_work_s=max(0.0, now - since),
    )


class VictimIndex:
    """Running workloads grouped by (tier, guaranteed) and sorted in victim order."""

    def __init__(self, victims: list[Victim]) -> None:
        self.classes: dict[tuple[int, bool], list[Victim]] = {}
        for victim in sorted(victims, key=Victim.order_key):
            self.classes.setdefault((victim.tier, victim.guaranteed), []).append(victim)
        self.bids: dict[tuple[int, bool], list[float]] = {
            key: [v.bid for v in members] for key, members in self.classes.items()
        }
        self.gpu_prefix: dict[tuple[int, bool], list[float]] = {}
        for key, members in self.classes.items():
            prefix = [0.0]
            for v in members:
                prefix.append(prefix[-1] + v.gpus)
            self.gpu_prefix[key] = prefix
        self.taken: set[WorkloadUid] = set()

    def walk(
        self, *, tier: int, guaranteed: bool, bid: float, now: float, min_runtime_s: float
    ) -> Iterator[tuple[Victim, PreemptionCause]]:
        """Eligible victims for a candidate, in victim order."""
        for lower in range(int(Tier.LOW), tier):
            for victim in self.classes.get((lower, False), ()):
                if victim.uid not in self.taken:
                    yield victim, PreemptionCause.HIGHER_TIER
            if guaranteed:
                for victim in self.classes.get((lower, True), ()):
                    if victim.uid not in self.taken:
                        yield victim, PreemptionCause.HIGHER_TIER
        same = self.classes.get((tier, False), ())
        if guaranteed:
            for victim in same:
                if victim.uid not in self.taken:
                    yield victim, PreemptionCause.GUARANTEE_RECLAIM
            return
        for victim in same:
            if victim.bid >= bid:
                return
            if victim.uid in self.taken or now - victim.started_at < min_runtime_s:
                continue
            yield victim, PreemptionCause.OUTBID

    def eligible_gpus_upper_bound(self, *, tier: int, guaranteed: bool, bid: float) -> float:
        """GPUs the candidate could at most free by preemption (cheap, for early exits)."""
        total = 0.0
        for lower in range(int(Tier.LOW), tier):
            total += self.gpu_prefix.get((lower, False), [0.0])[-1]
            if guaranteed:
                total += self.gpu_prefix.get((lower, True), [0.0])[-1]
        prefix = self.gpu_prefix.get((tier, False))
        if prefix is not None:
            if guaranteed:
                total += prefix[-1]
            else:
                total += prefix[bisect.bisect_left(self.bids[(tier, False)], bid)]
        return total

    def lowest_bid_at_tier(self, tier: int) -> float | None:
        """The lowest bid among running borrowers of a tier not yet preempted."""
        for victim in self.classes.get((tier, False), ()):
            if victim.uid not in self.taken:
                return victim.bid
        return None


class _Trial:
    """GPUs freed by a tentative victim set, per node and NVLink domain."""

    def __init__(self, state: ClusterState, gpus_per_replica: int, replicas: int) -> None:
        self.state = state
        self.g = gpus_per_replica
        self.replicas = replicas
        self.base_total: int | None = None

    def freed_by(self, victims: list[Victim]) -> dict[NodeState, list[int]]:
        hits: dict[tuple[NodeState, int], int] = {}
        freed: dict[NodeState, list[int]] = {}
        for victim in victims:
            for ns, slot in self.state.slots_of(victim.workload) or ():
                self._hit(ns, slot, hits, freed)
        return freed

    def _hit(
        self,
        ns: NodeState,
        slot: int,
        hits: dict[tuple[NodeState, int], int],
        freed: dict[NodeState, list[int]],
    ) -> bool:
        if not ns.schedulable or ns.status[slot] not in (USED, SHARED):
            return False
        count = hits.get((ns, slot), 0) + 1
        hits[(ns, slot)] = count
        if count != ns.holders[slot]:
            return False
        extra = freed.get(ns)
        if extra is None:
            extra = freed[ns] = [0] * len(ns.free_d)
        extra[ns.domain[slot]] += 1
        return True

    def capacity(self, ns: NodeState, extra: list[int]) -> int:
        g = self.g
        if g > ns.max_domain_size:
            return (ns.free + ns.rel + sum(extra)) // g
        return sum((f + r + e) // g for f, r, e in zip(ns.free_d, ns.rel_d, extra, strict=True))

    def fit_node(self, freed: dict[NodeState, list[int]]) -> NodeState | None:
        """A node on which one replica fits with these GPUs freed, if any."""
        for ns, extra in freed.items():
            if self.capacity(ns, extra) >= 1:
                return ns
        return None

    def feasible(self, freed: dict[NodeState, list[int]]) -> bool:
        if self.replicas == 1:
            return self.fit_node(freed) is not None
        if self.base_total is None:
            self.base_total = total_capacity(self.state, self.g, with_releasing=True)
        total = self.base_total
        for ns, extra in freed.items():
            total += self.capacity(ns, extra) - ns.replica_capacity(self.g, with_releasing=True)
        return total >= self.replicas

    def walk_until_fit(
        self, candidates: Iterator[tuple[Victim, PreemptionCause]]
    ) -> list[tuple[Victim, PreemptionCause]] | None:
        hits: dict[tuple[NodeState, int], int] = {}
        freed: dict[NodeState, list[int]] = {}
        chosen: list[tuple[Victim, PreemptionCause]] = []
        for victim, cause in candidates:
            slots = self.state.slots_of(victim.workload) or []
            completed = False
            for ns, slot in slots:
                completed = self._hit(ns, slot, hits, freed) or completed
            chosen.append((victim, cause))
            if not completed:
                continue
            if self.replicas == 1:
                target = self.fit_node({ns: freed[ns] for ns, _ in slots if ns in freed})
                if target is not None:
                    return self._prune(chosen, target)
            elif self.feasible(freed):
                return self._prune(chosen, None)
        return None

    def _prune(
        self, chosen: list[tuple[Victim, PreemptionCause]], target: NodeState | None
    ) -> list[tuple[Victim, PreemptionCause]]:
        if target is not None:
            chosen = [
                pair
                for pair in chosen
                if any(ns is target for ns, _ in self.state.slots_of(pair[0].workload) or ())
            ]
        kept = list(chosen)
        for pair in reversed(chosen):
            trial = [v for v, _ in kept if v is not pair[0]]
            if self.feasible(self.freed_by(trial)):
                kept = [p for p in kept if p[0] is not pair[0]]
        return kept


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
) -> list[tuple[Victim, PreemptionCause]] | None:
    """The victims to preempt so the gang fits, or ``None`` when no eligible set suffices."""
    trial = _Trial(state, max(1, gpus_per_replica), replicas)
    walk = index.walk(
        tier=tier, guaranteed=guaranteed, bid=bid, now=now, min_runtime_s=min_runtime_s
    )
    return trial.walk_until_fit(walk)


def release_victim(state: ClusterState, victim: Victim) -> None:
    """Mark a chosen victim's GPUs as releasing (claimable once its grace period ends)."""
    for ns, slot in state.slots_of(victim.workload) or ():
        if ns.status[slot] not in (USED, SHARED):
            continue
        ns.holders[slot] -= 1
        if ns.holders[slot] <= 0:
            state.shared.pop((ns, slot), None)
            if ns.schedulable:
                state.set_slots(ns, (slot,), RELEASING)
