"""``run_cycle``: the whole scheduling decision for one pool, as a pure function.

Stages (SCHEDULING.md, "One cycle"):

1. health filter: GPUs over the thresholds leave the pool; their workloads restart
   (preempted with no grace: the GPU is gone);
2. strict tiers: ``high`` before ``normal`` before ``low``;
3. guarantees: within a tier, demand inside a tenant's guarantee goes first and
   may reclaim GPUs other tenants borrow (:mod:`.guarantees`);
4. auction for the rest (borrowed capacity): bids from the workload or the
   fairness agent (scaled by the tenant's weight over the pool's mean weight), capped
   by credits (:mod:`.auction`, :mod:`.fairness`); the veterans' lane, a bounded
   share of the pool for the training work that has run longest, bids the ceiling
   (:mod:`.veterans`);
5. placement of each winner (:mod:`.placement`);
6. preemption plan (:mod:`.preemption`);
7. decisions with a reason for every workload left waiting.

Order in which pending workloads are considered (total; last tie broken by UID):

1. higher tier first;
2. inside the tenant's guarantee before borrowing (first-fit per tenant, in the
   order of criteria 3-5);
3. higher effective bid per GPU-hour first (greedy by bid density);
4. earlier submission first;
5. UID.

(The queue is bid and sorted as columns, :mod:`.queue_order`; criterion 2 is then a
first-fit per tenant over it.)

Capacity seen by a workload only shrinks along this order, so a gang shape that
found no room (even with preemption) is not searched again in the same phase
(same tier and guarantee class): everything after it gets its reason from
aggregate counters. That, and the free-capacity buckets, keep a cycle over
4,000 nodes and 50,000 workloads cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from operator import attrgetter
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from gpupool.scheduling.auction import Bidder, borrower_price, clearing_price, weight_factors
from gpupool.scheduling.capacity import (
    CLAIMED,
    RELEASING,
    ClusterState,
    NodeState,
    ordered_layouts,
)
from gpupool.scheduling.config import GuaranteeOrder, PoolConfig
from gpupool.scheduling.decisions import (
    Decisions,
    LazyMapping,
    Placement,
    Preemption,
    PreemptionCause,
    WaitCode,
    WaitingReason,
)
from gpupool.scheduling.guarantees import (
    GuaranteeEntry,
    forget_fits,
    split_running,
)
from gpupool.scheduling.health import gpu_problem
from gpupool.scheduling.kept_nodes import Hold, forget_kept_nodes, kept_nodes, make_hold
from gpupool.scheduling.model import Tenant, TenantName, Tier, Workload, WorkloadKind, WorkloadUid
from gpupool.scheduling.ordered_queue import Entry, OrderedQueue
from gpupool.scheduling.placement import Plan, place_shares, place_whole, total_capacity
from gpupool.scheduling.preemption import (
    RunningEntry,
    Victim,
    VictimClass,
    VictimIndex,
    find_victims,
    make_victim,
    release_victim,
)
from gpupool.scheduling.queue_order import (
    PendingTable,
    Queue,
    order_queue,
)
from gpupool.scheduling.reasons import Loss, waiting_reasons
from gpupool.scheduling.shapes import (
    EPSILON,
    Shape,
    closest_to_fitting,
    too_large_for,
)
from gpupool.scheduling.snapshot import Snapshot
from gpupool.scheduling.veterans import (
    choose_veterans,
)
from gpupool.scheduling.workload_index import (
    RunningFacts,
    forget_workload_indexes,
    workload_index,
)

_uid_of = attrgetter("uid")

_DoomedOutcomes = tuple[
    list[tuple[int, list[tuple[WorkloadUid, WaitingReason]]]],
    list[tuple[int, list[Loss]]],
    list[tuple[int, list[tuple[WorkloadUid, float]]]],
]
"""Outcomes of the doomed runs, each part with where it goes: (waiting reasons, losses,
bids)."""


class _DoomedRun(NamedTuple):
    """A run of the pending order whose shapes all failed earlier in the phase, recorded
    for lazy expansion: each entry loses exactly as the per-entry path would decide."""

    start: int
    end: int
    available: float
    """Free plus releasing GPUs during the run (nothing changes inside it)."""
    shown: float
    tenant_used: dict[TenantName, float]
    """A copy of the GPUs per tenant during the run (the over-maximum check)."""
    waiting_at: int
    losses_at: int
    bids_at: int
    """Lengths of the waiting reasons, losses and bids when the run was cut: where its
    outcomes go, so every mapping keeps the per-entry path's order."""


def forget_carried_facts() -> None:
    """Drop the facts carried between cycles (the next cycle derives everything again)."""
    forget_workload_indexes()
    forget_kept_nodes()
    forget_fits()


def run_cycle(snapshot: Snapshot, config: PoolConfig) -> Decisions:
    """Decide bindings, preemptions, prices and waiting reasons for ``snapshot``.

    Pure and deterministic: the same snapshot and config give the same decisions
    (every ordering ends with the workload UID); reads no clock (``snapshot.now``).
    """
    cycle = _Cycle(snapshot, config)
    try:
        return cycle.run()
    finally:
        cycle.kept.give_back(getattr(cycle, "state", None))


class _Cycle:
    """Scratch state of one ``run_cycle`` call (never outlives it)."""

    def __init__(self, snapshot: Snapshot, config: PoolConfig) -> None:
        self.snapshot = snapshot
        self.config = config
        self.now = snapshot.now
        self.tenants = snapshot.tenants
        self.bidder = Bidder(snapshot.now, config, weight_factors(snapshot.tenants.values()))
        self.kept = kept_nodes(ordered_layouts(snapshot.nodes, config.health))
        """The node states this cycle borrows (:mod:`.kept_nodes`)."""
        self.state: ClusterState
        """The capacity index (built by ``index_snapshot``)."""
        self.preemptions: dict[WorkloadUid, Preemption] = {}
        self.bindings: dict[WorkloadUid, Placement] = {}
        self.prices: dict[WorkloadUid, float] = {}
        self.bids: dict[WorkloadUid, float] = {}
        self.waiting: dict[WorkloadUid, WaitingReason] = {}
        self.losses: list[Loss] = []
        self.pending_rows: npt.NDArray[np.intp]
        """The row of each pending workload's facts (``facts[15]``) in :attr:`table`, in
        the snapshot's order."""
        self.table: PendingTable
        """This cycle's pending workloads' facts and their columns (:mod:`.queue_order`)."""
        self.running: list[GuaranteeEntry] = []
        """Running workloads keeping their GPUs (:func:`~.guarantees.guarantee_entry`)."""
        self.releasing: dict[WorkloadUid, Hold] = {}
        """This cycle's holds of terminating workloads, kept for the next cycle."""
        self.running_facts: list[RunningFacts] = []
        """The same workloads' :data:`~.workload_index.RunningFacts`, in the same order."""
        self.survivors: dict[VictimClass, list[RunningEntry]] = {}
        """Running workloads keeping their GPUs so far, by (tier, guaranteed): (workload,
        GPUs, guaranteed, bid, victim facts)."""
        self.borrowers: list[tuple[WorkloadUid, int, float]] = []
        """Running borrowers: (uid, tier, bid)."""
        self.winners: list[tuple[WorkloadUid, int, float, bool]] = []
        """Bound this cycle: (uid, tier, bid, guaranteed)."""
        self.class_gpus: dict[tuple[int, bool], float] = {}
        self.class_slots: dict[tuple[int, bool], int] = {}
        """Whole GPUs each victim class touches: what preempting it could free at most
        (a fractional replica counts its whole GPU; ``class_gpus`` counts its share).
        A running workload touches the slots ``state.held`` resolved for it."""
        """GPUs held by running workloads per (tier, inside guarantee)."""
        self.tenant_used: dict[TenantName, float] = {}
        self.guaranteed_used: dict[TenantName, float] = {}
        self.victim_index: VictimIndex | None = None
        self.highest_losing_bid: float | None = None
        """The highest bid of a borrower that found no GPUs (sets the clearing price)."""
        self.highest_losing_bid_or_zero = -1.0
        self.reserved = False
        """Whether this cycle already reserved a node for a starving workload."""
        self.bulk: list[tuple[int, int, float]] = []
        """Slices of the pending order that lost in bulk: (start, end, GPUs shown free at
        their tier)."""
        self.doomed: list[_DoomedRun] = []
        """Runs of the pending order that lost because their shapes already failed."""
        self._lowest_bids: dict[int, float] = {}
        """The lowest bid of a running borrower per tier (set by ``classify_running``)."""

    def run(self) -> Decisions:
        self.index_snapshot()
        self.select_veterans()
        self.classify_running()
        ordered = self.order_pending()
        self.place_pending(ordered)
        return self.finish(ordered)

    # -- stage 1: snapshot -> capacity index, health filter ------------------------------

    def index_snapshot(self) -> None:
        kept = self.kept
        index = workload_index(self.config)
        index.update(
            self.snapshot, kept.layouts, partial(kept.places_of, healthy=True), self.bidder
        )
        self.table = index.table
        self.pending_rows = index.pending_rows()
        held = index.held
        self.running_facts = running_facts = [facts for _, facts in held if facts is not None]
        self.running = [facts[1] for facts in running_facts]
        holds: list[Hold]
        if len(running_facts) == len(held):  # nothing terminating or on a lost GPU
            holds = [facts[10] for facts in running_facts]
        else:
            holds = []
            for workload, maybe in held:
                if maybe is None:
                    self._index_releasing(workload, holds)
                else:
                    holds.append(maybe[10])
        kept.releasing = self.releasing
        self.state = kept.lend(self.snapshot.nodes, self.config.health, holds)

    def _index_releasing(self, workload: Workload, holds: list[Hold]) -> None:
        """A running workload that is terminating, or that must restart because its node
        or one of its GPUs left the pool (preempted now, with no grace)."""
        kept = self.kept
        uid = workload.uid
        hold = kept.releasing.get(uid)
        if hold is None or hold[0] is not workload:
            places = kept.places_of(workload, healthy=False)
            hold = make_hold(workload, places or (), RELEASING)
        self.releasing[uid] = hold
        if workload.preempted_at is None:
            problem = "its node or GPU left the pool"
            for position, slot in hold[1]:
                ns = kept.nodes[position]
                if ns.bad[slot]:
                    gpu = ns.node.gpus[slot]
                    detail = gpu_problem(gpu, self.config.health) or "unusable"
                    problem = f"GPU {ns.name}/{gpu.index} {detail}"
                    break
            self.preemptions[uid] = Preemption(
                uid=uid,
                cause=PreemptionCause.UNHEALTHY_GPU,
                reason=f"{problem}; restarting from its last checkpoint",
                grace_deadline=self.now,
            )
        if hold[1]:
            holds.append(hold)

    # -- the veterans' lane (bids of its members) ------------------------------------------

    def select_veterans(self) -> None:
        """Choose this cycle's veterans' lane (:mod:`gpupool.scheduling.veterans`)."""
        config = self.config
        if config.veteran_share > 0:
            minimum = config.veteran_min_attained_s
            latest = self.now - minimum
            self.bidder.veterans = choose_veterans(
                # Running candidates carried with the running facts (facts[8]), kept if
                # they have run long enough (their key is at most now - minimum).
                [
                    c
                    for facts in self.running_facts
                    if (c := facts[8]) is not None and c[0] <= latest
                ],
                # Only pending work that has run long enough (facts[14], carried).
                self.table.lane_candidates(self.pending_rows),
                now=self.now,
                capacity_gpus=config.veteran_share * self.state.usable_total,
                age_credit=config.veteran_age_credit,
            )

    # -- stage 3/4: guarantees and bids of running workloads -----------------------------

    def classify_running(self) -> None:
        inside, self.guaranteed_used, self.tenant_used = split_running(self.running, self.tenants)
        config = self.config
        now = self.now
        reserve = config.reserve_price_per_gpu_hour
        min_runtime_s = config.min_runtime_s
        tenants = self.tenants
        prices = self.prices
        bids = self.bids
        borrowers = self.borrowers
        bidder = self.bidder
        # Per victim class, by 2 * tier + guaranteed (an int key hashes faster than the
        # class's tuple): its members and their slot counts, in the order met; the
        # classes themselves in the order first met (what survivors, class_gpus and
        # class_slots keep below).
        by_class: dict[int, tuple[list[RunningEntry], list[int]]] = {}
        found: tuple[list[RunningEntry], list[int]] | None
        lowest = self._lowest_bids
        inf = float("inf")
        for workload, _, gpus, tier, uid, _, _, slots, _, victim, _ in self.running_facts:
            if uid in inside:
                prices[uid] = 0.0
                found = by_class.get(2 * tier + 1)
                if found is None:
                    found = by_class[2 * tier + 1] = ([], [])
                found[0].append((workload, gpus, True, None, victim))
                found[1].append(slots)
                continue
            tenant = tenants.get(workload.tenant)
            allocation = workload.allocation
            assert allocation is not None
            bid = (
                bidder.raw(workload)
                if tenant is None
                else bidder.effective_running(workload, allocation, tenant, gpus)
            )
            bids[uid] = bid
            if (
                tenant is not None
                and bid < reserve
                and now - allocation.started_at >= (min_runtime_s)
            ):
                self._preempt_for_credits(workload, tenant, gpus)
                continue
            found = by_class.get(2 * tier)
            if found is None:
                found = by_class[2 * tier] = ([], [])
            found[0].append((workload, gpus, False, bid, victim))
            found[1].append(slots)
            borrowers.append((uid, tier, bid))
            if bid < lowest.get(tier, inf):
                lowest[tier] = bid
        for code, (members, slot_counts) in by_class.items():
            key = (code // 2, code % 2 == 1)
            self.survivors[key] = members
            total = 0.0
            for entry in members:  # in order, as the GPUs were added up before
                total += entry[1]
            self.class_gpus[key] = total
            self.class_slots[key] = sum(slot_counts)

    def _preempt_for_credits(self, workload: Workload, tenant: Tenant, gpus: float) -> None:
        uid = workload.uid
        self.preemptions[uid] = Preemption(
            uid=uid,
            cause=PreemptionCause.CREDITS_EXHAUSTED,
            reason=(
                f"tenant {tenant.name} has {tenant.credit_balance:.3g} credits, not enough "
                f"for the reserve price of its {gpus:g} borrowed GPUs"
            ),
            grace_deadline=self.now + self.config.grace_period_s,
        )
        self.tenant_used[workload.tenant] -= gpus
        release_victim(
            self.state, make_victim(workload, guaranteed=False, bid=0.0, gpus=gpus, now=self.now)
        )

    def _victims(self) -> VictimIndex:
        if self.victim_index is None:
            self.victim_index = VictimIndex(
                self.survivors,
                bid_of=self.bidder.raw,
                now=self.now,
                visit_budget=self.config.preemption_visit_budget,
            )
        return self.victim_index

    # -- stage 2-4: the order in which pending work is considered ------------------------

    def order_pending(self) -> OrderedQueue:
        bidder = self.bidder
        budgets = {name: bidder.budget(tenant) for name, tenant in self.tenants.items()}
        queue = order_queue(
            self.table, self.pending_rows, now=self.now, bidder=bidder, budgets=budgets
        )
        workloads = self.table.workloads
        rejected = [workloads[self.pending_rows[index]] for index in queue.rejected]
        for workload in sorted(rejected, key=_uid_of):  # by UID: rows follow no order
            if workload.tenant not in budgets:
                self._wait_fixed(workload, WaitCode.UNKNOWN_TENANT, 0.0)
            else:
                self._wait_fixed(
                    workload, WaitCode.TOO_LARGE, 0.0, "replicas and GPUs must be positive"
                )
        headroom = {
            name: tenant.guaranteed_gpus - self.guaranteed_used.get(name, 0.0)
            for name, tenant in self.tenants.items()
        }
        inside = self._inside_guarantee(queue, headroom)
        rows = queue.rows
        bids = queue.bid_column
        neg_tiers = queue.column("neg_tier")
        guaranteed = np.zeros(len(rows), dtype=bool)
        if inside:
            # Per tier, work inside a guarantee first, then the borrowers, each in order
            # (a stable sort: the queue is in tier order already).
            guaranteed[inside] = True
            regroup = np.lexsort((~guaranteed, neg_tiers))
            rows = rows[regroup]
            bids = bids[regroup]
            neg_tiers = neg_tiers[regroup]
            guaranteed = guaranteed[regroup]
        table = self.table
        ordered = OrderedQueue(
            rows,
            bids,
            guaranteed,
            neg_tiers,
            workloads=table.workloads,
            minimums=table.minimums,
            shapes=table.shapes,
        )
        if inside and self.config.guarantee_order is GuaranteeOrder.ARRIVAL:
            return ordered.reordered(_arrival_inside_first)
        return ordered

    def _inside_guarantee(self, queue: Queue, headroom: dict[TenantName, float]) -> list[int]:
        """Positions in ``queue`` of the workloads that fit their tenant's unused guarantee,
        first-fit per tenant (across tiers, in queue order) in bid order or, with
        ``GuaranteeOrder.ARRIVAL``, submission order. (Tenants are independent: each one's
        first-fit only reads its own headroom.)"""
        codes = queue.table.tenant_codes
        with_room = [
            (code, room)
            for name, room in headroom.items()
            if room > 0 and (code := codes.get(name)) is not None
        ]
        inside: list[int] = []
        if not with_room:
            return inside
        tenants = queue.column("tenant")
        fulls = queue.column("full")  # the full gang's GPUs (requested_gpus)
        # Only what fits its tenant's whole headroom can ever fit (it only shrinks): the
        # candidates of every tenant at once, in queue order.
        rooms = np.full(len(codes), -np.inf)
        for code, unused in with_room:
            rooms[code] = unused
        candidates: list[int] = np.flatnonzero(fulls <= rooms[tenants]).tolist()
        candidate_tenants: list[int] = tenants[candidates].tolist()
        candidate_fulls: list[float] = fulls[candidates].tolist()
        if self.config.guarantee_order is GuaranteeOrder.ARRIVAL:
            return self._inside_by_arrival(
                queue, with_room, candidates, candidate_tenants, candidate_fulls
            )
        left = dict(with_room)
        for index, code, full in zip(candidates, candidate_tenants, candidate_fulls, strict=True):
            room = left[code]
            if full <= room:
                left[code] = room - full
                inside.append(index)
        return inside

    @staticmethod
    def _inside_by_arrival(
        queue: Queue,
        with_room: list[tuple[int, float]],
        candidates: list[int],
        candidate_tenants: list[int],
        candidate_fulls: list[float],
    ) -> list[int]:
        """:meth:`_inside_guarantee` with ``GuaranteeOrder.ARRIVAL``: each tenant's
        candidates first-fit in (tier, submission, UID) order."""
        workloads = queue.workloads
        neg_tiers = queue.column("neg_tier")
        inside: list[int] = []
        for code, unused in with_room:
            room = unused
            mine = [
                (index, full)
                for index, tenant, full in zip(
                    candidates, candidate_tenants, candidate_fulls, strict=True
                )
                if tenant == code
            ]
            mine.sort(
                key=lambda pair: (
                    int(neg_tiers[pair[0]]),
                    workloads[pair[0]].submitted_at,
                    workloads[pair[0]].uid,
                )
            )
            for index, full in mine:
                if full <= room:
                    room -= full
                    inside.append(index)
        return inside

    # -- stage 5/6: placement and preemption ----------------------------------------------

    def place_pending(self, ordered: OrderedQueue) -> None:
        state = self.state
        reserve = self.config.reserve_price_per_gpu_hour
        margin = 1.0 + self.config.outbid_margin_ratio
        used = self.tenant_used
        tenants = self.tenants
        bids = self.bids
        losses = self.losses
        # The queue's columns, read directly (its entries are built only when read).
        row_at = ordered.row_at
        bid_at = ordered.bid_at
        guaranteed_at = ordered.guaranteed_at
        workloads = ordered.workloads
        minimums = ordered.minimums
        shapes = ordered.shapes
        failed: set[Shape] = set()
        phase_end = live_from = 0
        phase_tier: int | None = None
        phase_guaranteed: bool | None = None
        preemptions = self.preemptions
        reach = shown = 0.0
        preemptions_seen = -1
        lowest_running_bid = self._lowest_bids
        may_reserve = self.config.reserve_after_s is not None
        position = 0
        count = len(ordered)
        while position < count:
            row = row_at(position)
            workload = workloads[row]
            bid = bid_at(position)
            guaranteed = guaranteed_at(position)
            minimum = minimums[row]
            position += 1
            tier = int(workload.tier)
            new_phase = tier != phase_tier or guaranteed is not phase_guaranteed
            if new_phase or len(preemptions) != preemptions_seen:
                if new_phase:
                    failed.clear()
                    phase_end = ordered.phase_end(position, tier, guaranteed)
                phase_tier = tier
                phase_guaranteed = guaranteed
                preemptions_seen = len(preemptions)
                reach, shown = self._preemptible(tier, guaranteed)
            if state.free_total <= 0 and state.rel_total <= 0 and not state.shared:
                # Nothing free: once no preemption can help this candidate, none can help
                # the rest of its phase (lower bids, same victims): lose them in bulk.
                lowest = lowest_running_bid.get(tier)
                hopeless = (
                    reach <= 0
                    if guaranteed
                    else (shown <= 0 and (lowest is None or bid <= lowest * margin))
                )
                if hopeless:
                    end = ordered.phase_end(position, tier, guaranteed)
                    self._lose_in_bulk(ordered, position - 1, end, shown, guaranteed)
                    position = end
                    continue
            if failed and position > live_from and (not may_reserve or self.reserved):
                # For speed: entries whose shape already failed in this phase lose without
                # a search; find the run of them starting here and record it in one go.
                floor = self._bulk_floor(tier, guaranteed, shown)
                live_from = self._first_live(ordered, position - 1, phase_end, failed, floor)
                if live_from >= position:
                    self._lose_doomed(ordered, position - 1, live_from, shown)
                    position = live_from
                    continue
            if not guaranteed:
                bids[workload.uid] = bid
            tenant = tenants[workload.tenant]
            if tenant.max_gpus is not None and used.get(workload.tenant, 0.0) + minimum > (
                tenant.max_gpus + EPSILON
            ):
                self._wait_fixed(workload, WaitCode.OVER_TENANT_MAX, minimum)
                continue
            if not guaranteed and bid < reserve:
                code = (
                    WaitCode.NO_CREDITS
                    if self.bidder.raw(workload) >= reserve
                    else WaitCode.BELOW_RESERVE
                )
                losses.append((workload, code, minimum, 0.0, bid, True))
                continue
            share = workload.gpu_share
            g = workload.gpus_per_replica if share is None else 1
            if minimum > state.usable_total + EPSILON or g > state.max_usable_per_node:
                self._wait_fixed(workload, WaitCode.TOO_LARGE, minimum)
                continue
            available = state.free_total + state.rel_total
            if available + reach + EPSILON >= minimum or (share is not None and state.shared):
                shape = shapes[row]
                if shape not in failed:
                    if self._try_place(workload, bid, guaranteed, tier=tier, g=g, reach=reach):
                        used[workload.tenant] = used.get(workload.tenant, 0.0) + self._taken_gpus(
                            workload
                        )
                        continue
                    failed.add(shape)
            if (
                may_reserve
                and not self.reserved
                and share is None
                and self._reserve_for(workload, g)
            ):
                if not guaranteed and bid > self.highest_losing_bid_or_zero:
                    self.highest_losing_bid = self.highest_losing_bid_or_zero = bid
                continue
            code = WaitCode.NO_PLACEMENT if available + EPSILON >= minimum else WaitCode.NO_CAPACITY
            losses.append((workload, code, minimum, available + shown, bid, not guaranteed))
            if not guaranteed and bid > self.highest_losing_bid_or_zero:
                self.highest_losing_bid = self.highest_losing_bid_or_zero = bid

    def _bulk_expander(
        self, ordered: OrderedQueue
    ) -> Callable[[], tuple[dict[WorkloadUid, WaitingReason], list[Loss]]]:
        """Per-workload outcomes of the slices lost in bulk, computed when first read.

        The closure keeps only what it reads (never ``self``): the cycle's scratch state
        is then freed when ``run_cycle`` returns instead of living, and being scanned by
        the garbage collector, as long as the decisions.
        """
        bulk = list(self.bulk)
        reserve = self.config.reserve_price_per_gpu_hour
        usable_total = self.state.usable_total
        bidder = self.bidder
        tenants = self.tenants
        tenant_used = self.tenant_used

        def over_max(workload: Workload, minimum: float) -> bool:
            return _over_tenant_max(tenants, tenant_used, workload, minimum)

        def expand() -> tuple[dict[WorkloadUid, WaitingReason], list[Loss]]:
            fixed: dict[WorkloadUid, WaitingReason] = {}
            losses: list[Loss] = []
            for start, end, shown in bulk:
                for workload, bid, guaranteed, minimum in ordered.between(start, end):
                    if over_max(workload, minimum):
                        fixed[workload.uid] = WaitingReason(
                            WaitCode.OVER_TENANT_MAX, minimum, 0.0, workload.tier, 0.0, 0.0
                        )
                    elif not guaranteed and bid < reserve:
                        code = (
                            WaitCode.NO_CREDITS
                            if bidder.raw(workload) >= reserve
                            else WaitCode.BELOW_RESERVE
                        )
                        losses.append((workload, code, minimum, 0.0, bid, True))
                    elif minimum > usable_total + EPSILON:
                        fixed[workload.uid] = WaitingReason(
                            WaitCode.TOO_LARGE, minimum, 0.0, workload.tier, 0.0, 0.0
                        )
                    else:
                        losses.append(
                            (workload, WaitCode.NO_CAPACITY, minimum, shown, bid, not guaranteed)
                        )
            return fixed, losses

        return expand

    def _doomed_expander(self, ordered: OrderedQueue) -> Callable[[], _DoomedOutcomes]:
        """Per-workload outcomes of the runs lost for failed shapes, computed when first read
        (what the per-entry path of ``place_pending`` decides for each), each list with the
        index it goes at. Keeps only what it reads, like :meth:`_bulk_expander`."""
        runs = list(self.doomed)
        reserve = self.config.reserve_price_per_gpu_hour
        # Numbers, not the state: the cycle's scratch state must not outlive run_cycle.
        usable = (self.state.usable_total, self.state.max_usable_per_node)
        bidder = self.bidder
        tenants = self.tenants
        outcomes: list[_DoomedOutcomes] = []

        def expand() -> _DoomedOutcomes:
            if outcomes:
                return outcomes[0]
            fixed_parts: list[tuple[int, list[tuple[WorkloadUid, WaitingReason]]]] = []
            loss_parts: list[tuple[int, list[Loss]]] = []
            bid_parts: list[tuple[int, list[tuple[WorkloadUid, float]]]] = []
            for run in runs:
                fixed: list[tuple[WorkloadUid, WaitingReason]] = []
                losses: list[Loss] = []
                bids: list[tuple[WorkloadUid, float]] = []
                capacity_shown = run.available + run.shown
                for workload, bid, guaranteed, minimum in ordered.between(run.start, run.end):
                    uid = workload.uid
                    if not guaranteed:
                        bids.append((uid, bid))
                    if _over_tenant_max(tenants, run.tenant_used, workload, minimum):
                        fixed.append(
                            (
                                uid,
                                WaitingReason(
                                    WaitCode.OVER_TENANT_MAX, minimum, 0.0, workload.tier, 0.0, 0.0
                                ),
                            )
                        )
                    elif not guaranteed and bid < reserve:
                        code = (
                            WaitCode.NO_CREDITS
                            if bidder.raw(workload) >= reserve
                            else WaitCode.BELOW_RESERVE
                        )
                        losses.append((workload, code, minimum, 0.0, bid, True))
                    elif too_large_for(usable, workload, minimum):
                        fixed.append(
                            (
                                uid,
                                WaitingReason(
                                    WaitCode.TOO_LARGE, minimum, 0.0, workload.tier, 0.0, 0.0
                                ),
                            )
                        )
                    else:
                        code = (
                            WaitCode.NO_PLACEMENT
                            if run.available + EPSILON >= minimum
                            else WaitCode.NO_CAPACITY
                        )
                        losses.append(
                            (workload, code, minimum, capacity_shown, bid, not guaranteed)
                        )
                fixed_parts.append((run.waiting_at, fixed))
                loss_parts.append((run.losses_at, losses))
                bid_parts.append((run.bids_at, bids))
            outcomes.append((fixed_parts, loss_parts, bid_parts))
            return outcomes[0]

        return expand

    def _reserve_for(self, workload: Workload, g: int) -> bool:
        """Hold back the free GPUs of the nodes closest to fitting the workload's gang.

        Only for a workload queued at least ``reserve_after_s``. One node per replica of
        its smallest allowed gang: those with the most free plus releasing GPUs in one
        NVLink domain that could ever hold a replica of ``g`` GPUs (ties: node order).
        Their free GPUs stay idle this cycle, so the nodes drain for the workload
        instead of being refilled by smaller work.
        """
        after = self.config.reserve_after_s
        if after is None:
            return False
        queued_at = workload.submitted_at if workload.queued_at is None else workload.queued_at
        if self.now - queued_at < after:
            return False
        candidates: list[tuple[tuple[int, int], list[int], NodeState]] = []
        for ns in self.state.nodes:
            best = closest_to_fitting(ns, g)
            if best is not None:
                candidates.append((best[0], best[1], ns))
        if not candidates:
            return False
        candidates.sort(key=lambda candidate: candidate[0], reverse=True)
        chosen = candidates[: workload.smallest_replica_count]
        self.reserved = True
        for _, slots, ns in chosen:
            self.state.set_slots(ns, slots, CLAIMED)
        names = ", ".join(ns.name for _, _, ns in chosen)
        self._wait_fixed(
            workload,
            WaitCode.AWAITING_RELEASE,
            workload.requested_gpus,
            f"node{'s' if len(chosen) > 1 else ''} {names} reserved for it while "
            f"{'they drain' if len(chosen) > 1 else 'it drains'}",
        )
        return True

    def _bulk_floor(self, tier: int, guaranteed: bool, shown: float) -> float | None:
        """The bid at or below which the bulk shortcut of ``place_pending`` takes the rest
        of a borrower phase now (``None``: it does not; nothing changes inside a run of
        failed shapes, so this holds for the whole run)."""
        state = self.state
        if guaranteed or shown > 0 or state.free_total > 0 or state.rel_total > 0 or state.shared:
            return None
        lowest = self._lowest_bids.get(tier)
        return None if lowest is None else lowest * (1.0 + self.config.outbid_margin_ratio)

    def _first_live(
        self, ordered: OrderedQueue, start: int, end: int, failed: set[Shape], floor: float | None
    ) -> int:
        """The first index from ``start`` (before ``end``, the phase end) whose entry may
        still be placed: its shape has not failed, or the bulk shortcut takes it."""
        shapes = ordered.shapes
        row_at = ordered.row_at
        bid_at = ordered.bid_at
        for index in range(start, end):
            if (floor is not None and bid_at(index) <= floor) or shapes[
                row_at(index)
            ] not in failed:
                return index
        return end

    def _lose_doomed(self, ordered: OrderedQueue, start: int, end: int, shown: float) -> None:
        """Record ``ordered[start:end]`` (shapes that failed in this phase) as waiting; their
        reasons and bids are built when read, in the place the per-entry path puts them."""
        state = self.state
        self.doomed.append(
            _DoomedRun(
                start,
                end,
                state.free_total + state.rel_total,
                shown,
                dict(self.tenant_used),
                len(self.waiting),
                len(self.losses),
                len(self.bids),
            )
        )
        if ordered.guaranteed_at(start):
            return  # inside a guarantee: no bid sets the price
        reserve = self.config.reserve_price_per_gpu_hour
        for index in range(start, end):
            workload, bid, _, minimum = ordered[index]
            if self._over_tenant_max(workload, minimum):
                continue
            if bid < reserve:
                return  # sorted by bid: no capacity loser below this one
            if too_large_for((state.usable_total, state.max_usable_per_node), workload, minimum):
                continue
            if bid > self.highest_losing_bid_or_zero:
                self.highest_losing_bid = self.highest_losing_bid_or_zero = bid
            return

    def _lose_in_bulk(
        self, ordered: OrderedQueue, start: int, end: int, shown: float, guaranteed: bool
    ) -> None:
        """Record ``ordered[start:end]`` as waiting without looking at each one now."""
        self.bulk.append((start, end, shown))
        if guaranteed:
            return
        reserve = self.config.reserve_price_per_gpu_hour
        state = self.state
        for index in range(start, end):
            workload, bid, _, minimum = ordered[index]
            if bid < reserve:
                return  # sorted by bid: no capacity loser below this one
            too_large = minimum > state.usable_total + EPSILON
            if not too_large and not self._over_tenant_max(workload, minimum):
                if bid > self.highest_losing_bid_or_zero:
                    self.highest_losing_bid = self.highest_losing_bid_or_zero = bid
                return

    def _over_tenant_max(self, workload: Workload, minimum: float) -> bool:
        return _over_tenant_max(self.tenants, self.tenant_used, workload, minimum)

    def _try_place(
        self, workload: Workload, bid: float, guaranteed: bool, *, tier: int, g: int, reach: float
    ) -> bool:
        state = self.state
        spread = workload.kind is WorkloadKind.INFERENCE
        share = workload.gpu_share
        smallest = workload.replicas if workload.min_replicas is None else workload.min_replicas
        plan: Plan | None
        if share is not None:
            plan = place_shares(state, share=share, replicas=workload.replicas, spread=spread)
            if plan is None and smallest < workload.replicas:
                plan = place_shares(state, share=share, replicas=smallest, spread=spread)
        else:
            plan = place_whole(
                state,
                gpus_per_replica=g,
                replicas=workload.replicas,
                spread=spread,
                with_releasing=False,
            )
            if plan is None and smallest < workload.replicas:
                fits = min(workload.replicas - 1, total_capacity(state, g, with_releasing=False))
                if fits >= smallest:
                    plan = place_whole(
                        state,
                        gpus_per_replica=g,
                        replicas=fits,
                        spread=spread,
                        with_releasing=False,
                    )
        if plan is not None:
            self.bindings[workload.uid] = plan.placement()
            self.winners.append((workload.uid, tier, bid, guaranteed))
            return True
        # Whole GPUs being released (by earlier preemptions) may be claimed, in order.
        if state.rel_total > 0:
            plan = place_whole(
                state, gpus_per_replica=g, replicas=smallest, spread=spread, with_releasing=True
            )
            if plan is not None:
                self._await(workload, smallest)
                return True
        if reach <= 0:
            return False
        victims = find_victims(
            state,
            self._victims(),
            tier=tier,
            guaranteed=guaranteed,
            bid=bid,
            gpus_per_replica=g,
            replicas=smallest,
            now=self.now,
            min_runtime_s=self.config.min_runtime_s,
            outbid_margin_ratio=self.config.outbid_margin_ratio,
            max_outbid_preemptions=self.config.max_outbid_preemptions,
        )
        if victims is None:
            return False
        for victim, cause in victims:
            self._preempt(victim, cause, workload, guaranteed)
        plan = place_whole(
            state, gpus_per_replica=g, replicas=smallest, spread=spread, with_releasing=True
        )
        if plan is None:  # pragma: no cover - the victim search and placement agree
            return False
        self._await(workload, smallest)
        return True

    def _taken_gpus(self, workload: Workload) -> float:
        placement = self.bindings.get(workload.uid)
        replicas = len(placement) if placement is not None else workload.smallest_replica_count
        return replicas * workload.gpus_per_replica_units

    def _await(self, workload: Workload, replicas: int) -> None:
        self._wait_fixed(
            workload, WaitCode.AWAITING_RELEASE, replicas * workload.gpus_per_replica_units
        )

    def _preempt(
        self, victim: Victim, cause: PreemptionCause, preemptor: Workload, guaranteed: bool
    ) -> None:
        self._victims().taken.add(victim.uid)
        self.class_gpus[(victim.tier, victim.guaranteed)] -= victim.gpus
        self.class_slots[(victim.tier, victim.guaranteed)] -= len(
            self.state.held_slots(victim.workload)
        )
        self.prices.pop(victim.uid, None)
        self.tenant_used[victim.workload.tenant] -= victim.gpus
        release_victim(self.state, victim)
        what = {
            PreemptionCause.HIGHER_TIER: f"tier {preemptor.tier.label}",
            PreemptionCause.GUARANTEE_RECLAIM: f"guaranteed GPUs of tenant {preemptor.tenant}",
            PreemptionCause.OUTBID: "a higher bid",
        }.get(cause, cause.value)
        self.preemptions[victim.uid] = Preemption(
            uid=victim.uid,
            cause=cause,
            reason=f"preempted for {preemptor.tenant}/{preemptor.name} ({what})",
            grace_deadline=self.now + self.config.grace_period_s,
            preemptor=preemptor.uid,
            preemptor_guaranteed=guaranteed,
        )

    def _preemptible(self, tier: int, guaranteed: bool) -> tuple[float, float]:
        """GPUs a phase may reach by preemption: (upper bound for the search, shown).

        ``shown`` leaves out same-tier borrowers a borrower would have to outbid (its
        reason says bid and price instead).
        """
        reach = shown = 0.0
        slots = self.class_slots
        for key, gpus in self.class_gpus.items():
            victim_tier, victim_guaranteed = key
            if victim_tier < tier and (guaranteed or not victim_guaranteed):
                reach += slots.get(key, 0)
                shown += gpus
            elif victim_tier == tier and not victim_guaranteed:
                reach += slots.get(key, 0)
                if guaranteed:
                    shown += gpus
        return max(0.0, reach), max(0.0, shown)

    # -- stage 7: prices and reasons -------------------------------------------------------

    def _wait_fixed(
        self, workload: Workload, code: WaitCode, needed: float, detail: str = ""
    ) -> None:
        self.waiting[workload.uid] = WaitingReason(
            code, needed, 0.0, workload.tier, 0.0, 0.0, detail
        )

    def finish(self, ordered: OrderedQueue) -> Decisions:
        reserve = self.config.reserve_price_per_gpu_hour
        price = clearing_price(reserve, self.highest_losing_bid)
        prices = self.prices
        preempted = self.preemptions
        ask: dict[int, float] = {}
        inf = float("inf")
        for uid, tier, bid in self.borrowers:
            if uid in preempted:
                continue
            prices[uid] = bid if bid < price else price
            if bid < ask.get(tier, inf):
                ask[tier] = bid
        for uid, tier, bid, guaranteed in self.winners:
            if guaranteed:
                prices[uid] = 0.0
                continue
            prices[uid] = borrower_price(bid, price)
            if bid < ask.get(tier, inf):
                ask[tier] = bid
        fixed = self.waiting
        losses = self.losses
        bulk = self.bulk
        exhausted = self.victim_index is not None and self.victim_index.exhausted
        expand = self._bulk_expander(ordered)
        expand_doomed = self._doomed_expander(ordered)

        def reasons() -> dict[WorkloadUid, WaitingReason]:
            more_fixed, more_losses = expand()
            doomed_fixed, doomed_losses, _ = expand_doomed()
            return waiting_reasons(
                {**dict(_splice(list(fixed.items()), doomed_fixed)), **more_fixed},
                _splice(losses, doomed_losses) + more_losses,
                ask=ask,
                reserve=reserve,
                exhausted=exhausted,
            )

        def positions() -> dict[WorkloadUid, int]:
            waiting_uids = set(fixed)
            waiting_uids.update(loss[0].uid for loss in losses)
            for start, end, _ in bulk:
                waiting_uids.update(
                    ordered.workload(position).uid for position in range(start, end)
                )
            for run in doomed:
                waiting_uids.update(
                    ordered.workload(position).uid for position in range(run.start, run.end)
                )
            numbered: dict[WorkloadUid, int] = {}
            for entry in ordered:
                uid = entry[0].uid
                if uid in waiting_uids:
                    numbered[uid] = len(numbered) + 1
            for uid in fixed:
                if uid not in numbered:
                    numbered[uid] = len(numbered) + 1
            return numbered

        known_bids = self.bids
        doomed = self.doomed

        def all_bids() -> dict[WorkloadUid, float]:
            merged = dict(_splice(list(known_bids.items()), expand_doomed()[2]))
            for start, end, _ in bulk:
                for workload, bid, guaranteed, _ in ordered.between(start, end):
                    if not guaranteed:
                        merged[workload.uid] = bid
            return merged

        return Decisions(
            now=self.now,
            bindings=self.bindings,
            preemptions=self.preemptions,
            clearing_price_per_gpu_hour=price,
            prices=prices,
            bids=LazyMapping(all_bids) if bulk or doomed else self.bids,
            waiting=LazyMapping(reasons),
            queue_positions=LazyMapping(positions),
        )


def _over_tenant_max(
    tenants: Mapping[TenantName, Tenant],
    tenant_used: dict[TenantName, float],
    workload: Workload,
    minimum: float,
) -> bool:
    tenant = tenants[workload.tenant]
    return tenant.max_gpus is not None and (
        tenant_used.get(workload.tenant, 0.0) + minimum > tenant.max_gpus + EPSILON
    )


_T = TypeVar("_T")


def _splice(items: list[_T], parts: list[tuple[int, list[_T]]]) -> list[_T]:
    """``items`` with each part inserted before the item at its index (indexes ascending,
    all into the original ``items``)."""
    if not parts:
        return items
    out: list[_T] = []
    previous = 0
    for at, part in parts:
        out.extend(items[previous:at])
        out.extend(part)
        previous = at
    out.extend(items[previous:])
    return out


__all__ = ["Tier", "run_cycle"]


def _arrival_inside_first(entry: Entry) -> tuple[int, int, float, str]:
    """Per tier, work inside a guarantee in submission order, then borrowers (stable: the
    borrowers keep their bid order)."""
    workload, _, guaranteed, _ = entry
    if guaranteed:
        return (-int(workload.tier), 0, workload.submitted_at, workload.uid)
    return (-int(workload.tier), 1, 0.0, "")
