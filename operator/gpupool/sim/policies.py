"""Scheduling policies the simulator can replay a trace through.

``gpupool`` is :func:`gpupool.scheduling.run_cycle` itself. The baselines share its
placement code (so placement quality is not what differs) and produce the same
:class:`~gpupool.scheduling.Decisions`:

* ``fifo``: arrival order, non-preemptive, work-conserving (a job that does not fit
  is skipped, later ones may start);
* ``sjf``: shortest job first by the trace's true duration (an oracle), otherwise
  like ``fifo``;
* ``las``: Tiresias' discretized two-dimensional least-attained-service: queues by
  attained GPU-seconds (thresholds ``LAS_QUEUE_THRESHOLDS_GPU_S``), FIFO inside a
  queue, preemptive (running jobs outside the top set that fits the pool are
  preempted), no starvation knob;
* ``drf``: weighted fair share between tenants (dominant resource fairness with
  one resource): the tenant with the lowest allocated/weight share goes next, its
  oldest job that fits starts; non-preemptive;
* ``themis``: the finish-time-fair auction without tiers, guarantees or credits:
  ``run_cycle`` with every job in one tier, no guarantees, unlimited credits, no
  veterans' lane, and the fairness agent bidding (leases = ``min_runtime_s``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Protocol

from gpupool.scheduling import (
    Decisions,
    Placement,
    PoolConfig,
    Preemption,
    PreemptionCause,
    Snapshot,
    Tier,
    WaitCode,
    WaitingReason,
    Workload,
    WorkloadUid,
    run_cycle,
)
from gpupool.scheduling.capacity import RELEASING, USED, ClusterState
from gpupool.scheduling.decisions import LazyMapping
from gpupool.scheduling.placement import Plan, place_shares, place_whole

LAS_QUEUE_THRESHOLDS_GPU_S = (3_600.0, 36_000.0)
"""Queue boundaries in attained GPU-seconds (1 and 10 GPU-hours)."""

_ARRIVAL = attrgetter("submitted_at", "uid")

POLICY_NAMES = ("fifo", "sjf", "las", "drf", "themis", "gpupool")


class Policy(Protocol):
    """A policy's name, traits (read by the simulator) and decision function."""

    @property
    def name(self) -> str: ...
    @property
    def preemptive(self) -> bool:
        """False: decisions can only bind into idle GPUs (no cycle needed when none are
        idle)."""

    @property
    def time_dependent(self) -> bool:
        """Decisions change with time alone (aging bids, leases): cycle while jobs wait."""

    @property
    def uses_tiers(self) -> bool: ...
    @property
    def uses_guarantees_and_credits(self) -> bool: ...

    def decide(self, snapshot: Snapshot) -> Decisions: ...


@dataclass(frozen=True, slots=True)
class RunCyclePolicy:
    """``run_cycle`` itself: ``gpupool``, or ``themis`` (the simulator then drops tiers,
    guarantees and credits from the workloads and tenants it builds)."""

    config: PoolConfig
    name: str = "gpupool"
    uses_tiers: bool = True
    uses_guarantees_and_credits: bool = True
    preemptive: bool = True
    time_dependent: bool = True

    def decide(self, snapshot: Snapshot) -> Decisions:
        return run_cycle(snapshot, self.config)


# -- shared machinery of the baselines ----------------------------------------------------


class _NonPreemptive:
    """Traits of ``fifo``, ``sjf`` and ``drf``: bind into idle GPUs only, in an order that
    does not change with time alone, one tier, no guarantees or credits."""

    __slots__ = ()
    preemptive = False
    time_dependent = False
    uses_tiers = False
    uses_guarantees_and_credits = False


class _Board:
    """A snapshot's capacity index plus the decisions a baseline takes on it."""

    def __init__(self, snapshot: Snapshot, config: PoolConfig) -> None:
        self.snapshot = snapshot
        self.config = config
        self.state = ClusterState(snapshot.nodes, config.health)
        self.pending: list[Workload] = []
        self.running: list[Workload] = []
        state = self.state
        for workload in snapshot.workloads.values():
            if workload.allocation is None:
                self.pending.append(workload)
                continue
            slots = state.slots_of(workload) or []
            if workload.preempted_at is not None:
                state.occupy(workload, slots, RELEASING)
            else:
                state.occupy(workload, slots, USED)
                self.running.append(workload)
        state.finish_build()
        self.bindings: dict[WorkloadUid, Placement] = {}
        self.preemptions: dict[WorkloadUid, Preemption] = {}
        self.waiting: list[tuple[Workload, float]] = []
        self.waiting_rest: list[Workload] = []
        """Everything after the point where no GPU was left (one slice, no copies)."""
        self.free_at_rest = 0.0
        self.failed: set[tuple[int, int, float]] = set()
        """Gang shapes that found no room this cycle (capacity only shrinks within it)."""

    def try_bind(self, workload: Workload) -> bool:
        state = self.state
        share = workload.gpu_share
        shape = (
            workload.replicas,
            workload.gpus_per_replica,
            0.0 if share is None else share.fraction,
        )
        if state.free_total <= 0 or shape in self.failed:
            return False
        plan: Plan | None
        if workload.gpu_share is not None:
            plan = place_shares(
                state, share=workload.gpu_share, replicas=workload.replicas, spread=True
            )
        else:
            plan = place_whole(
                state,
                gpus_per_replica=workload.gpus_per_replica,
                replicas=workload.replicas,
                spread=False,
                with_releasing=False,
            )
        if plan is None:
            self.failed.add(shape)
            return False
        self.bindings[workload.uid] = plan.placement()
        return True

    def wait(self, workload: Workload) -> None:
        self.waiting.append((workload, float(self.state.free_total)))

    def wait_all(self, workloads: list[Workload]) -> None:
        self.waiting_rest = workloads
        self.free_at_rest = float(self.state.free_total)

    def preempt(self, workload: Workload, reason: str) -> None:
        self.preemptions[workload.uid] = Preemption(
            uid=workload.uid,
            cause=PreemptionCause.HIGHER_TIER,
            reason=reason,
            grace_deadline=self.snapshot.now + self.config.grace_period_s,
        )

    def decisions(self) -> Decisions:
        waiting = self.waiting
        rest = self.waiting_rest
        free_at_rest = self.free_at_rest

        def everyone() -> list[tuple[Workload, float]]:
            return waiting + [(workload, free_at_rest) for workload in rest]

        def reasons() -> dict[WorkloadUid, WaitingReason]:
            out: dict[WorkloadUid, WaitingReason] = {}
            for workload, free in everyone():
                needed = workload.requested_gpus
                code = WaitCode.NO_PLACEMENT if free >= needed else WaitCode.NO_CAPACITY
                out[workload.uid] = WaitingReason(code, needed, free, workload.tier, 0.0, 0.0)
            return out

        def positions() -> dict[WorkloadUid, int]:
            return {workload.uid: i for i, (workload, _) in enumerate(everyone(), 1)}

        return Decisions(
            now=self.snapshot.now,
            bindings=self.bindings,
            preemptions=self.preemptions,
            clearing_price_per_gpu_hour=0.0,
            prices={},
            bids={},
            waiting=LazyMapping(reasons),
            queue_positions=LazyMapping(positions),
        )


def _greedy(board: _Board, ordered: list[Workload]) -> Decisions:
    for position, workload in enumerate(ordered):
        if board.state.free_total <= 0 and not board.state.shared:
            board.wait_all(ordered[position:])
            break
        if not board.try_bind(workload):
            board.wait(workload)
    return board.decisions()


@dataclass(slots=True)
class FifoPolicy(_NonPreemptive):
    config: PoolConfig
    name: str = "fifo"

    def decide(self, snapshot: Snapshot) -> Decisions:
        board = _Board(snapshot, self.config)
        board.pending.sort(key=_ARRIVAL)
        return _greedy(board, board.pending)


@dataclass(slots=True)
class SjfPolicy(_NonPreemptive):
    config: PoolConfig
    durations: Mapping[str, float]
    """True durations from the trace (the oracle)."""
    name: str = "sjf"

    def decide(self, snapshot: Snapshot) -> Decisions:
        board = _Board(snapshot, self.config)
        durations = self.durations
        board.pending.sort(key=lambda w: (durations[w.uid], w.submitted_at, w.uid))
        return _greedy(board, board.pending)


@dataclass(slots=True)
class DrfPolicy(_NonPreemptive):
    config: PoolConfig
    name: str = "drf"

    def decide(self, snapshot: Snapshot) -> Decisions:
        board = _Board(snapshot, self.config)
        tenants = snapshot.tenants
        allocated: dict[str, float] = {}
        for workload in board.running:
            allocated[workload.tenant] = (
                allocated.get(workload.tenant, 0.0) + workload.allocated_gpus()
            )
        queues: dict[str, list[Workload]] = {}
        for workload in sorted(board.pending, key=_ARRIVAL):
            queues.setdefault(workload.tenant, []).append(workload)

        def weight(name: str) -> float:
            tenant = tenants.get(name)  # type: ignore[call-overload]
            return tenant.weight if tenant is not None and tenant.weight > 0 else 1.0

        heap = [(allocated.get(name, 0.0) / weight(name), name) for name in queues]
        heapq.heapify(heap)
        while heap and board.state.free_total > 0:
            _, name = heapq.heappop(heap)
            queue = queues[name]
            for position, workload in enumerate(queue):
                if board.try_bind(workload):
                    del queue[position]
                    allocated[name] = allocated.get(name, 0.0) + workload.requested_gpus
                    if queue:
                        heapq.heappush(heap, (allocated[name] / weight(name), name))
                    break
        for queue in queues.values():
            for workload in queue:
                if workload.uid not in board.bindings:
                    board.wait(workload)
        return board.decisions()


@dataclass(slots=True)
class LasPolicy:
    config: PoolConfig
    name: str = "las"
    preemptive: bool = True
    time_dependent: bool = True
    uses_tiers: bool = False
    uses_guarantees_and_credits: bool = False
    thresholds_gpu_s: tuple[float, ...] = LAS_QUEUE_THRESHOLDS_GPU_S

    def decide(self, snapshot: Snapshot) -> Decisions:
        board = _Board(snapshot, self.config)
        now = snapshot.now
        queue_of = self._queue_of(now)
        everyone = board.running + board.pending
        everyone.sort(key=lambda w: (queue_of(w), w.submitted_at, w.uid))
        capacity = board.state.usable_total - board.state.rel_total
        keep: set[WorkloadUid] = set()
        used = 0.0
        for workload in everyone:
            need = workload.requested_gpus
            if used + need <= capacity:
                keep.add(workload.uid)
                used += need
        for workload in board.running:
            if workload.uid not in keep:
                board.preempt(workload, "a job with less attained service needs the GPUs")
        for workload in sorted(board.pending, key=lambda w: (queue_of(w), w.submitted_at, w.uid)):
            if workload.uid not in keep or not board.try_bind(workload):
                board.wait(workload)
        return board.decisions()

    def _queue_of(self, now: float) -> Callable[[Workload], int]:
        thresholds = self.thresholds_gpu_s

        def queue(workload: Workload) -> int:
            attained = workload.attained_service_s
            if workload.allocation is not None:
                attained += max(0.0, now - workload.allocation.started_at)
            service = attained * workload.requested_gpus
            for index, threshold in enumerate(thresholds):
                if service < threshold:
                    return index
            return len(thresholds)

        return queue


def make_policy(name: str, *, config: PoolConfig, durations: Mapping[str, float]) -> Policy:
    if name == "gpupool":
        return RunCyclePolicy(config)
    if name == "themis":
        # Themis has no veterans' lane: the baseline is the fairness auction alone.
        return RunCyclePolicy(
            replace(config, veteran_share=0.0),
            name="themis",
            uses_tiers=False,
            uses_guarantees_and_credits=False,
        )
    if name == "fifo":
        return FifoPolicy(config)
    if name == "sjf":
        return SjfPolicy(config, durations)
    if name == "las":
        return LasPolicy(config)
    if name == "drf":
        return DrfPolicy(config)
    raise ValueError(f"unknown policy {name!r} (choose from {', '.join(POLICY_NAMES)})")


__all__ = ["POLICY_NAMES", "Policy", "Tier", "make_policy"]
