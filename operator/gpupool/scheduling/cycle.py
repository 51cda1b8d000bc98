"""``run_cycle``: the whole scheduling decision for one pool, as a pure function.

Stages (SCHEDULING.md, "One cycle"):

1. health filter: GPUs over the thresholds leave the pool; their workloads restart
   (preempted with no grace: the GPU is gone);
2. strict tiers: ``high`` before ``normal`` before ``low``;
3. guarantees: within a tier, demand inside a tenant's guarantee goes first and
   may reclaim GPUs other tenants borrow (:mod:`.guarantees`);
4. auction for the rest (borrowed capacity): bids from the workload or the
   fairness agent, capped by credits (:mod:`.auction`, :mod:`.fairness`);
5. placement of each winner (:mod:`.placement`);
6. preemption plan (:mod:`.preemption`);
7. decisions with a reason for every workload left waiting.

Order in which pending workloads are considered (total; last tie broken by UID):

1. higher tier first;
2. inside the tenant's guarantee before borrowing;
3. higher effective bid per GPU-hour first (greedy by bid density);
4. earlier submission first;
5. UID.

Capacity seen by a workload only shrinks along this order, so a gang shape that
found no room (even with preemption) is not searched again in the same phase
(same tier and guarantee class): everything after it gets its reason from
aggregate counters. That, and the free-capacity buckets, keep a cycle over
4,000 nodes and 50,000 workloads well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpupool.scheduling.auction import (
    borrower_price,
    clearing_price,
    effective_bid,
    raw_bid,
)
from gpupool.scheduling.capacity import RELEASING, USED, ClusterState
from gpupool.scheduling.config import PoolConfig
from gpupool.scheduling.decisions import (
    Decisions,
    Placement,
    Preemption,
    PreemptionCause,
    WaitCode,
    WaitingReason,
)
from gpupool.scheduling.guarantees import split_running
from gpupool.scheduling.health import gpu_problem
from gpupool.scheduling.model import Tenant, TenantName, Tier, Workload, WorkloadKind, WorkloadUid
from gpupool.scheduling.placement import Plan, place_shares, place_whole, total_capacity
from gpupool.scheduling.preemption import (
    Victim,
    VictimIndex,
    find_victims,
    make_victim,
    release_victim,
)
from gpupool.scheduling.snapshot import Snapshot

_CAPACITY_CODES = (WaitCode.NO_CAPACITY, WaitCode.NO_PLACEMENT)


@dataclass(slots=True)
class _Candidate:
    workload: Workload
    bid: float
    guaranteed: bool
    min_gpus: float


@dataclass(slots=True)
class _Loss:
    workload: Workload
    code: WaitCode
    needed: float
    free_at_tier: float
    bid: float
    borrower: bool


def run_cycle(snapshot: Snapshot, config: PoolConfig) -> Decisions:
    """Decide bindings, preemptions, prices and waiting reasons for ``snapshot``.

    Pure and deterministic: the same snapshot and config give the same decisions
    (every ordering ends with the workload UID); reads no clock (``snapshot.now``).
    """
    return _Cycle(snapshot, config).run()


class _Cycle:
    def __init__(self, snapshot: Snapshot, config: PoolConfig) -> None:
        self.snapshot = snapshot
        self.config = config
        self.now = snapshot.now
        self.tenants = snapshot.tenants
        self.state = ClusterState(snapshot.nodes, config.health)
        self.preemptions: dict[WorkloadUid, Preemption] = {}
        self.bindings: dict[WorkloadUid, Placement] = {}
        self.prices: dict[WorkloadUid, float] = {}
        self.bids: dict[WorkloadUid, float] = {}
        self.losses: list[_Loss] = []
        self.waiting: dict[WorkloadUid, WaitingReason] = {}
        self.pending: list[Workload] = []
        self.running: list[Workload] = []
        self.borrower_bids: dict[WorkloadUid, float] = {}
        self.winners: list[tuple[WorkloadUid, float, bool]] = []
        self.victim_index: VictimIndex | None = None
        self.victim_pool: list[Victim] = []
        self.class_gpus: dict[tuple[int, bool], float] = {}
        self.tenant_used: dict[TenantName, float] = {}

    # -- stage 1: snapshot -> capacity index, health filter ------------------------------

    def index_snapshot(self) -> None:
        state = self.state
        now = self.now
        for workload in self.snapshot.workloads.values():
            if workload.allocation is None:
                self.pending.append(workload)
                continue
            slots = state.slots_of(workload)
            if workload.preempted_at is not None:
                if slots:
                    state.occupy(workload, slots, RELEASING)
                continue
            problem: str | None = None
            if slots is None:
                problem = "its node or GPU left the pool"
            else:
                for ns, slot in slots:
                    if ns.bad[slot]:
                        gpu = ns.node.gpus[slot]
                        detail = gpu_problem(gpu, self.config.health) or "unusable"
                        problem = f"GPU {ns.name}/{gpu.index} {detail}"
                        break
            if problem is not None:
                self.preemptions[workload.uid] = Preemption(
                    uid=workload.uid,
                    cause=PreemptionCause.UNHEALTHY_GPU,
                    reason=f"{problem}; restarting from its last checkpoint",
                    grace_deadline=now,
                )
                if slots:
                    state.occupy(workload, slots, RELEASING)
                continue
            assert slots is not None
            state.occupy(workload, slots, USED)
            self.running.append(workload)
        state.finish_build()

    # -- stage 3/4: guarantees and bids of running workloads -----------------------------

    def classify_running(self) -> None:
        inside, _, used = split_running(self.running, self.tenants)
        self.inside = inside
        self.tenant_used = used
        self.guaranteed_used: dict[TenantName, float] = {}
        config = self.config
        now = self.now
        reserve = config.reserve_price_per_gpu_hour
        for workload in self.running:
            guaranteed = workload.uid in inside
            gpus = workload.allocated_gpus()
            if guaranteed:
                name = workload.tenant
                self.guaranteed_used[name] = self.guaranteed_used.get(name, 0.0) + gpus
                bid = raw_bid(workload, now, config)
                self.prices[workload.uid] = 0.0
            else:
                tenant = self.tenants.get(workload.tenant)
                bid = (
                    raw_bid(workload, now, config)
                    if tenant is None
                    else effective_bid(workload, tenant, gpus, now, config)
                )
                self.bids[workload.uid] = bid
                self.borrower_bids[workload.uid] = bid
                allocation = workload.allocation
                assert allocation is not None
                if (
                    tenant is not None
                    and bid < reserve
                    and now - allocation.started_at >= config.min_runtime_s
                ):
                    self._preempt_for_credits(workload, tenant)
                    continue
            key = (int(workload.tier), guaranteed)
            self.class_gpus[key] = self.class_gpus.get(key, 0.0) + gpus
            self.victim_pool.append(make_victim(workload, guaranteed=guaranteed, bid=bid, now=now))

    def _preempt_for_credits(self, workload: Workload, tenant: Tenant) -> None:
        uid = workload.uid
        self.borrower_bids.pop(uid, None)
        self.preemptions[uid] = Preemption(
            uid=uid,
            cause=PreemptionCause.CREDITS_EXHAUSTED,
            reason=(
                f"tenant {tenant.name} has {tenant.credit_balance:.3g} credits, not enough "
                f"for the reserve price of its {workload.allocated_gpus():g} borrowed GPUs"
            ),
            grace_deadline=self.now + self.config.grace_period_s,
        )
        self.tenant_used[workload.tenant] -= workload.allocated_gpus()
        release_victim(self.state, make_victim(workload, guaranteed=False, bid=0.0, now=self.now))

    def _victims(self) -> VictimIndex:
        if self.victim_index is None:
            self.victim_index = VictimIndex(self.victim_pool)
        return self.victim_index

    # -- stage 2-5: order pending work and place it --------------------------------------

    def order_pending(self) -> list[_Candidate]:
        now = self.now
        config = self.config
        tenants = self.tenants
        keyed: list[tuple[int, float, float, str, Workload, float, float]] = []
        for workload in self.pending:
            tenant = tenants.get(workload.tenant)
            if tenant is None:
                self._wait_fixed(workload, WaitCode.UNKNOWN_TENANT, 0.0)
                continue
            if not _valid_shape(workload):
                self._wait_fixed(
                    workload, WaitCode.TOO_LARGE, 0.0, "replicas and GPUs must be positive"
                )
                continue
            full = workload.requested_gpus
            bid = effective_bid(workload, tenant, full, now, config)
            minimum = workload.smallest_replica_count * workload.gpus_per_replica_units
            keyed.append(
                (
                    -int(workload.tier),
                    -bid,
                    workload.submitted_at,
                    workload.uid,
                    workload,
                    bid,
                    minimum,
                )
            )
        keyed.sort(key=_first_four)
        headroom = {
            name: tenant.guaranteed_gpus - self.guaranteed_used.get(name, 0.0)
            for name, tenant in tenants.items()
        }
        ordered: list[_Candidate] = []
        tier_borrowers: list[_Candidate] = []
        current_tier: int | None = None
        for neg_tier, _, _, _, workload, bid, minimum in keyed:
            if neg_tier != current_tier:
                ordered.extend(tier_borrowers)
                tier_borrowers = []
                current_tier = neg_tier
            full = workload.requested_gpus
            room = headroom[workload.tenant]
            if full <= room:
                headroom[workload.tenant] = room - full
                ordered.append(_Candidate(workload, bid, True, minimum))
            else:
                tier_borrowers.append(_Candidate(workload, bid, False, minimum))
        ordered.extend(tier_borrowers)
        return ordered

    def place_pending(self, ordered: list[_Candidate]) -> None:
        state = self.state
        config = self.config
        reserve = config.reserve_price_per_gpu_hour
        failed: set[tuple[int, float, int, int, int]] = set()
        phase: tuple[int, bool] | None = None
        used = self.tenant_used
        tenants = self.tenants
        for candidate in ordered:
            workload = candidate.workload
            tier = int(workload.tier)
            guaranteed = candidate.guaranteed
            if (tier, guaranteed) != phase:
                phase = (tier, guaranteed)
                failed.clear()
            tenant = tenants[workload.tenant]
            bid = candidate.bid
            minimum = candidate.min_gpus
            if not guaranteed:
                self.bids[workload.uid] = bid
            if tenant.max_gpus is not None and used.get(workload.tenant, 0.0) + minimum > (
                tenant.max_gpus + 1e-9
            ):
                self._wait_fixed(workload, WaitCode.OVER_TENANT_MAX, minimum)
                continue
            if not guaranteed and bid < reserve:
                raw = raw_bid(workload, self.now, config)
                code = WaitCode.NO_CREDITS if raw >= reserve else WaitCode.BELOW_RESERVE
                self.losses.append(_Loss(workload, code, minimum, 0.0, bid, True))
                continue
            share = workload.gpu_share
            g = workload.gpus_per_replica if share is None else 1
            if minimum > state.usable_total + 1e-9 or g > state.max_usable_per_node:
                self._wait_fixed(workload, WaitCode.TOO_LARGE, minimum)
                continue
            shape = (
                g,
                0.0 if share is None else share.fraction,
                0 if share is None else share.memory_mib,
                workload.smallest_replica_count,
                1 if workload.kind is WorkloadKind.INFERENCE else 0,
            )
            free_at_tier = (
                state.free_total + state.rel_total + self._preemptible_gpus(tier, guaranteed, bid)
            )
            if shape in failed or free_at_tier + 1e-9 < minimum:
                self._lose(workload, minimum, free_at_tier, bid, guaranteed)
                continue
            if self._try_place(candidate, tier, g):
                used[workload.tenant] = used.get(workload.tenant, 0.0) + (
                    self._placed_gpus(workload)
                )
                continue
            failed.add(shape)
            self._lose(workload, minimum, free_at_tier, bid, guaranteed)

    def _try_place(self, candidate: _Candidate, tier: int, g: int) -> bool:
        workload = candidate.workload
        state = self.state
        spread = workload.kind is WorkloadKind.INFERENCE
        share = workload.gpu_share
        smallest = workload.smallest_replica_count
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
                fits = min(
                    workload.replicas - 1,
                    total_capacity(state, g, with_releasing=False),
                )
                if fits >= smallest:
                    plan = place_whole(
                        state,
                        gpus_per_replica=g,
                        replicas=fits,
                        spread=spread,
                        with_releasing=False,
                    )
        if plan is not None:
            self._bind(candidate, plan)
            return True
        if state.rel_total > 0:
            plan = place_whole(
                state,
                gpus_per_replica=g,
                replicas=smallest,
                spread=spread,
                with_releasing=True,
            )
            if plan is not None:
                self._await(workload, smallest * workload.gpus_per_replica_units)
                return True
        if self._preemptible_gpus(tier, candidate.guaranteed, candidate.bid) <= 0:
            return False
        index = self._victims()
        victims = find_victims(
            state,
            index,
            tier=tier,
            guaranteed=candidate.guaranteed,
            bid=candidate.bid,
            gpus_per_replica=g,
            replicas=smallest,
            now=self.now,
            min_runtime_s=self.config.min_runtime_s,
        )
        if victims is None:
            return False
        for victim, cause in victims:
            self._preempt(victim, cause, workload)
        plan = place_whole(
            state, gpus_per_replica=g, replicas=smallest, spread=spread, with_releasing=True
        )
        if plan is None:  # pragma: no cover - the victim search and placement agree
            return False
        self._await(workload, smallest * workload.gpus_per_replica_units)
        return True

    def _placed_gpus(self, workload: Workload) -> float:
        placement = self.bindings.get(workload.uid)
        if placement is None:
            return workload.smallest_replica_count * workload.gpus_per_replica_units
        return len(placement) * workload.gpus_per_replica_units

    def _bind(self, candidate: _Candidate, plan: Plan) -> None:
        uid = candidate.workload.uid
        self.bindings[uid] = plan.placement()
        self.winners.append((uid, candidate.bid, candidate.guaranteed))

    def _await(self, workload: Workload, gpus: float) -> None:
        self._wait_fixed(workload, WaitCode.AWAITING_RELEASE, gpus)

    def _preempt(self, victim: Victim, cause: PreemptionCause, preemptor: Workload) -> None:
        index = self._victims()
        index.taken.add(victim.uid)
        self.class_gpus[(victim.tier, victim.guaranteed)] -= victim.gpus
        self.borrower_bids.pop(victim.uid, None)
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
        )

    def _preemptible_gpus(self, tier: int, guaranteed: bool, bid: float) -> float:
        if self.victim_index is not None:
            return self.victim_index.eligible_gpus_upper_bound(
                tier=tier, guaranteed=guaranteed, bid=bid
            )
        total = 0.0
        for (victim_tier, victim_guaranteed), gpus in self.class_gpus.items():
            lower_tier = victim_tier < tier and (guaranteed or not victim_guaranteed)
            if lower_tier or (victim_tier == tier and not victim_guaranteed):
                total += gpus
        return total

    # -- stage 7: reasons and prices -----------------------------------------------------

    def _wait_fixed(
        self, workload: Workload, code: WaitCode, needed: float, detail: str = ""
    ) -> None:
        self.waiting[workload.uid] = WaitingReason(
            code, needed, 0.0, workload.tier, 0.0, 0.0, detail
        )

    def _lose(
        self,
        workload: Workload,
        needed: float,
        free_at_tier: float,
        bid: float,
        guaranteed: bool,
    ) -> None:
        code = (
            WaitCode.NO_PLACEMENT
            if self.state.free_total + 1e-9 >= needed
            else WaitCode.NO_CAPACITY
        )
        self.losses.append(_Loss(workload, code, needed, free_at_tier, bid, not guaranteed))

    def finish(self) -> Decisions:
        reserve = self.config.reserve_price_per_gpu_hour
        highest_losing: float | None = None
        for loss in self.losses:
            if (
                loss.borrower
                and loss.code in _CAPACITY_CODES
                and (highest_losing is None or loss.bid > highest_losing)
            ):
                highest_losing = loss.bid
        price = clearing_price(reserve, highest_losing)
        ask: dict[int, float] = {}
        for uid, bid in self.borrower_bids.items():
            self.prices[uid] = borrower_price(bid, price)
            tier = int(self.snapshot.workloads[uid].tier)
            if bid < ask.get(tier, float("inf")):
                ask[tier] = bid
        for uid, bid, guaranteed in self.winners:
            if guaranteed:
                self.prices[uid] = 0.0
            else:
                self.prices[uid] = borrower_price(bid, price)
                tier = int(self.snapshot.workloads[uid].tier)
                if bid < ask.get(tier, float("inf")):
                    ask[tier] = bid
        waiting = self.waiting
        for loss in self.losses:
            workload = loss.workload
            code = loss.code
            shown_price = 0.0
            detail = ""
            if code in (WaitCode.BELOW_RESERVE, WaitCode.NO_CREDITS):
                shown_price = reserve
            elif loss.borrower:
                lowest = ask.get(int(workload.tier))
                shown_price = max(reserve, lowest if lowest is not None else reserve)
                if lowest is not None and loss.bid < lowest and code is WaitCode.NO_CAPACITY:
                    code = WaitCode.OUTBID
                elif lowest is not None and code is WaitCode.NO_CAPACITY:
                    detail = "lower bidders are still inside their minimum runtime"
            waiting[workload.uid] = WaitingReason(
                code,
                loss.needed,
                loss.free_at_tier,
                workload.tier,
                loss.bid,
                shown_price,
                detail,
            )
        positions = {uid: position for position, uid in enumerate(self._queue_order(), 1)}
        return Decisions(
            now=self.now,
            bindings=self.bindings,
            preemptions=self.preemptions,
            clearing_price_per_gpu_hour=price,
            prices=self.prices,
            bids=self.bids,
            waiting=waiting,
            queue_positions=positions,
        )

    def _queue_order(self) -> list[WorkloadUid]:
        return [uid for uid in self.order_uids if uid in self.waiting]

    def run(self) -> Decisions:
        self.index_snapshot()
        self.classify_running()
        ordered = self.order_pending()
        self.order_uids = [candidate.workload.uid for candidate in ordered]
        self.place_pending(ordered)
        return self.finish()


def _first_four(
    row: tuple[int, float, float, str, Workload, float, float],
) -> tuple[int, float, float, str]:
    return row[0], row[1], row[2], row[3]


def _valid_shape(workload: Workload) -> bool:
    if workload.replicas < 1:
        return False
    if workload.min_replicas is not None and not 1 <= workload.min_replicas <= workload.replicas:
        return False
    share = workload.gpu_share
    if share is not None:
        return 0.0 < share.fraction <= 1.0 and share.memory_mib >= 0
    return workload.gpus_per_replica >= 1


__all__ = ["Tier", "run_cycle"]
