"""Discrete-event replay of a trace through a scheduling policy.

Events: job arrivals, completions, and releases (a preempted job leaves its GPUs
when its grace period ends, keeps the progress it checkpointed, and requeues).
A scheduling cycle runs after events, at most once per ``cycle_interval_s`` of
simulated time (events inside one interval are coalesced into one cycle), and,
for policies whose decisions change with time alone (aging bids, leases), every
``requeue_interval_s`` while jobs wait.

Model (the same for every policy):

* a job needs its ``duration_s`` of run time on all its GPUs; a preempted job
  keeps running through its grace period (checkpointing), loses nothing, and
  pays ``restart_overhead_s`` of extra run time when it starts again;
* GPUs held by a job in its grace period count as busy, not free;
* the simulated clock starts at the first submission.
"""

from __future__ import annotations

import gc
import heapq
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from gpupool.scheduling import (
    GPU,
    Allocation,
    Decisions,
    GpuShare,
    Node,
    NodeName,
    ReplicaPlacement,
    Snapshot,
    Tenant,
    TenantName,
    Tier,
    Workload,
    WorkloadChanges,
    WorkloadUid,
)
from gpupool.scheduling.credits import settle
from gpupool.sim.evolve import evolved
from gpupool.sim.policies import Policy
from gpupool.sim.trace import TraceJob, gang_shape

GPU_MEMORY_MIB = 81_920


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    nodes: int = 32
    gpus_per_node: int = 8
    cycle_interval_s: float = 60.0
    requeue_interval_s: float = 300.0
    restart_overhead_s: float = 30.0


@dataclass(slots=True)
class JobRecord:
    """What the simulator tracks per job (its own mutable book-keeping)."""

    job: TraceJob
    workload: Workload
    remaining_s: float
    gpus: float
    area_at_submit: float = 0.0
    area_at_finish: float = 0.0
    """Integral of the number of jobs in the system at submit and at finish."""
    started_at: float | None = None
    first_start: float | None = None
    finish: float | None = None
    preemptions: int = 0
    epoch: int = 0


@dataclass(slots=True)
class Metrics:
    busy_gpu_s: float = 0.0
    jobs_in_system_area: float = 0.0
    unallocatable_idle_gpu_s: float = 0.0
    cycles: int = 0
    cycle_wall_s: float = 0.0
    preemptions_by_cause: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    records: list[JobRecord]
    metrics: Metrics
    gpus: int
    first_submit: float
    last_finish: float
    wall_s: float
    unfinished: int = 0
    credit_spent: dict[str, float] = field(default_factory=dict)


def make_nodes(nodes: int, gpus_per_node: int) -> tuple[Node, ...]:
    return tuple(
        Node(
            name=NodeName(f"node-{n:04d}"),
            gpus=tuple(
                GPU(index=i, memory_total_mib=GPU_MEMORY_MIB, memory_free_mib=GPU_MEMORY_MIB)
                for i in range(gpus_per_node)
            ),
        )
        for n in range(nodes)
    )


def make_workload(job: TraceJob, *, gpus_per_node: int, use_tiers: bool) -> Workload:
    tier = job.tier if use_tiers else Tier.NORMAL
    if job.gpus < 1:
        return Workload(
            uid=WorkloadUid(job.job_id),
            name=job.job_id,
            tenant=TenantName(job.tenant),
            kind=job.kind,
            tier=tier,
            replicas=1,
            gpus_per_replica=0,
            gpu_share=GpuShare(fraction=job.gpus, memory_mib=int(job.gpus * GPU_MEMORY_MIB)),
            submitted_at=job.submit_s,
        )
    replicas, per_replica = gang_shape(job.gpus, gpus_per_node)
    return Workload(
        uid=WorkloadUid(job.job_id),
        name=job.job_id,
        tenant=TenantName(job.tenant),
        kind=job.kind,
        tier=tier,
        replicas=replicas,
        gpus_per_replica=per_replica,
        submitted_at=job.submit_s,
    )


COLLECT_EVERY_CYCLES = 10_000
"""Cycles between two collections of the young generations during a replay."""


class Simulator:
    def __init__(
        self,
        jobs: Iterable[TraceJob],
        *,
        policy: Policy,
        tenants: dict[TenantName, Tenant],
        config: SimConfig,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.policy = policy
        self.config = config
        self.jobs = sorted(jobs, key=lambda job: (job.submit_s, job.job_id))
        self.nodes = make_nodes(config.nodes, config.gpus_per_node)
        self.total_gpus = config.nodes * config.gpus_per_node
        if policy.uses_guarantees_and_credits:
            self.tenants = dict(tenants)
        else:
            self.tenants = {
                name: replace(
                    tenant,
                    guaranteed_gpus=0,
                    max_gpus=None,
                    credits_per_hour=0.0,
                    credits_max=float("inf"),
                    credit_balance=float("inf"),
                )
                for name, tenant in tenants.items()
            }
        self.progress = progress
        self.records: dict[WorkloadUid, JobRecord] = {}
        self.payers: dict[WorkloadUid, tuple[TenantName, float]] = {}
        """Per job, the tenant that pays for it and its GPUs (what the spend rates read)."""
        self.active: dict[WorkloadUid, Workload] = {}
        self.pending_count = 0
        self.waiting_shapes: dict[tuple[int, int], int] = {}
        """Shapes (replicas, GPUs per replica) of the waiting whole-GPU jobs, with counts
        (what ``_unallocatable_idle`` checks, instead of scanning every job each cycle)."""
        self.used_per_node: dict[str, int] = {}
        """GPUs the running and terminating jobs hold per node name."""
        self.allocated_gpus = 0.0
        self.metrics = Metrics()
        self.completions: list[tuple[float, int, WorkloadUid, int]] = []
        self.releases: list[tuple[float, int, WorkloadUid, int]] = []
        self.sequence = 0
        self.now = self.jobs[0].submit_s if self.jobs else 0.0
        self.unallocatable_idle = 0.0
        self.spend_rate: dict[TenantName, float] = {}
        """Credits per hour each tenant pays at the last cycle's prices."""
        self.prices: dict[WorkloadUid, float] = {}
        self.credit_spent: dict[str, float] = {}
        self.last_settle = self.now
        self.last_bound = 0
        self.last_workloads: Mapping[WorkloadUid, Workload] | None = None
        """The last snapshot's workloads (what the next one's changes refer to)."""
        self.changed: dict[WorkloadUid, None] = {}
        """UIDs of the workloads added, replaced or removed since then, in that order."""

    # -- time ---------------------------------------------------------------------------

    def advance(self, to: float) -> None:
        elapsed = to - self.now
        if elapsed <= 0:
            return
        metrics = self.metrics
        metrics.busy_gpu_s += self.allocated_gpus * elapsed
        metrics.jobs_in_system_area += len(self.active) * elapsed
        metrics.unallocatable_idle_gpu_s += self.unallocatable_idle * elapsed
        self.now = to

    def settle_credits(self) -> None:
        if not self.policy.uses_guarantees_and_credits:
            return
        elapsed = self.now - self.last_settle
        if elapsed <= 0:
            return
        for name, tenant in self.tenants.items():
            rate = self.spend_rate.get(name, 0.0)
            balance = tenant.credit_balance
            if rate <= 0.0 and balance == tenant.credits_max and balance > 0.0:
                # Nothing to pay and the balance at its cap: settle() would keep the very
                # same tenant and report nothing spent (accrual is never negative, so the
                # balance stays capped), about half the calls in a replay.
                continue
            spend = rate * elapsed / 3600.0
            if balance == math.inf and tenant.credits_max == math.inf and spend > 0.0:
                # Unmetered (the replay's default terms): settle() would keep the very same
                # tenant and report the whole spend paid; in a default replay, all the calls
                # the shortcut above leaves.
                spent = spend
            else:
                statement = settle(tenant, spend=spend, elapsed_s=elapsed)
                self.tenants[name] = statement.tenant
                spent = statement.spent
            if spent:
                self.credit_spent[name] = self.credit_spent.get(name, 0.0) + spent
        self.last_settle = self.now

    # -- events -------------------------------------------------------------------------

    def arrive(self, job: TraceJob) -> None:
        workload = make_workload(
            job, gpus_per_node=self.config.gpus_per_node, use_tiers=self.policy.uses_tiers
        )
        record = JobRecord(
            job=job,
            workload=workload,
            remaining_s=job.duration_s,
            gpus=workload.requested_gpus,
            area_at_submit=self.metrics.jobs_in_system_area,
        )
        self.records[workload.uid] = record
        self.payers[workload.uid] = (TenantName(job.tenant), record.gpus)
        self.active[workload.uid] = workload
        self.changed[workload.uid] = None
        self.pending_count += 1
        self._count_waiting(workload, 1)
        if job.tenant not in self.tenants:
            raise KeyError(f"tenant {job.tenant!r} of job {job.job_id} has no terms")

    def start(self, uid: WorkloadUid, decisions: Decisions) -> None:
        record = self.records[uid]
        placement = decisions.bindings[uid]
        now = self.now
        workload = evolved(
            record.workload, allocation=Allocation(replicas=placement, started_at=now)
        )
        record.workload = workload
        self.active[uid] = workload
        self.changed[uid] = None
        self._count_waiting(workload, -1)
        self._count_used(placement, 1)
        record.started_at = now
        if record.first_start is None:
            record.first_start = now
        record.epoch += 1
        run = record.remaining_s + (self.config.restart_overhead_s if record.preemptions else 0)
        self._push(self.completions, now + run, uid, record.epoch)
        self.pending_count -= 1
        self.allocated_gpus += record.gpus

    def preempt(self, uid: WorkloadUid, deadline: float) -> None:
        record = self.records[uid]
        workload = evolved(record.workload, preempted_at=self.now)
        record.workload = workload
        self.active[uid] = workload
        self.changed[uid] = None
        self._push(self.releases, max(deadline, self.now), uid, record.epoch)

    def complete(self, uid: WorkloadUid) -> None:
        record = self.records[uid]
        record.finish = self.now
        record.area_at_finish = self.metrics.jobs_in_system_area
        record.remaining_s = 0.0
        record.epoch += 1
        del self.active[uid]
        self.changed[uid] = None
        allocation = record.workload.allocation
        assert allocation is not None
        self._count_used(allocation.replicas, -1)
        self.allocated_gpus -= record.gpus
        self._drop_spend(uid, record)

    def release(self, uid: WorkloadUid) -> None:
        record = self.records[uid]
        started = record.started_at
        assert started is not None
        ran = self.now - started
        overhead = self.config.restart_overhead_s if record.preemptions else 0.0
        record.remaining_s = max(1.0, record.remaining_s - max(0.0, ran - overhead))
        record.preemptions += 1
        record.epoch += 1
        record.started_at = None
        workload = record.workload
        assert workload.allocation is not None
        self._count_used(workload.allocation.replicas, -1)
        record.workload = evolved(
            workload,
            allocation=None,
            preempted_at=None,
            attained_service_s=workload.attained_service_s + max(0.0, ran),
            restarts=workload.restarts + 1,
            preemptions=workload.preemptions + 1,
            queued_at=self.now,
        )
        self.active[uid] = record.workload
        self.changed[uid] = None
        self.pending_count += 1
        self._count_waiting(record.workload, 1)
        self.allocated_gpus -= record.gpus
        self._drop_spend(uid, record)

    def _count_waiting(self, workload: Workload, step: int) -> None:
        """Keep :attr:`waiting_shapes` (a whole-GPU job joined or left the queue)."""
        if workload.gpu_share is None:
            shape = (workload.replicas, workload.gpus_per_replica)
            count = self.waiting_shapes.get(shape, 0) + step
            if count:
                self.waiting_shapes[shape] = count
            else:
                del self.waiting_shapes[shape]

    def _count_used(self, replicas: Iterable[ReplicaPlacement], step: int) -> None:
        """Keep :attr:`used_per_node` (a job started, or left its GPUs)."""
        used = self.used_per_node
        for replica in replicas:
            used[replica.node] = used.get(replica.node, 0) + step * len(replica.gpu_indices)

    def _drop_spend(self, uid: WorkloadUid, record: JobRecord) -> None:
        price = self.prices.pop(uid, 0.0)
        if price:
            self.settle_credits()
            tenant = TenantName(record.job.tenant)
            self.spend_rate[tenant] = self.spend_rate.get(tenant, 0.0) - price * record.gpus

    def _push(
        self,
        heap: list[tuple[float, int, WorkloadUid, int]],
        at: float,
        uid: WorkloadUid,
        epoch: int,
    ) -> None:
        self.sequence += 1
        heapq.heappush(heap, (at, self.sequence, uid, epoch))

    # -- cycles -------------------------------------------------------------------------

    def cycle(self) -> None:
        self.settle_credits()
        workloads = MappingProxyType(self.active)
        since = self.last_workloads
        snapshot = Snapshot(
            now=self.now,
            nodes=self.nodes,
            tenants=MappingProxyType(self.tenants),
            workloads=workloads,
            changes=(
                None
                if since is None
                else WorkloadChanges(since=since, workloads=workloads, uids=tuple(self.changed))
            ),
        )
        self.last_workloads = workloads
        self.changed = {}
        self._decide_and_apply(snapshot)
        if self.metrics.cycles % COLLECT_EVERY_CYCLES == 0:
            gc.collect(1)  # the young generations only (see run)
        self.unallocatable_idle = self._unallocatable_idle()

    def _decide_and_apply(self, snapshot: Snapshot) -> None:
        started = time.perf_counter()
        decisions = self.policy.decide(snapshot)
        self.metrics.cycle_wall_s += time.perf_counter() - started
        self.metrics.cycles += 1
        for uid, preemption in decisions.preemptions.items():
            record = self.records[uid]
            if record.workload.allocation is not None and record.workload.preempted_at is None:
                self.preempt(uid, preemption.grace_deadline)
                causes = self.metrics.preemptions_by_cause
                causes[preemption.cause.value] = causes.get(preemption.cause.value, 0) + 1
        for uid in decisions.bindings:
            self.start(uid, decisions)
        self.last_bound = len(decisions.bindings)
        if self.policy.uses_guarantees_and_credits:
            active = self.active
            prices: dict[WorkloadUid, float] = {}
            rates: dict[TenantName, float] = {}
            payers = self.payers
            for uid, price in decisions.prices.items():  # one pass: the prices and the rates
                if price > 0 and uid in active:
                    prices[uid] = price
                    tenant, gpus = payers[uid]
                    rates[tenant] = rates.get(tenant, 0.0) + price * gpus
            self.prices = prices
            self.spend_rate = rates

    def _unallocatable_idle(self) -> float:
        """Idle GPUs while a waiting job small enough for them cannot be placed."""
        idle = self.total_gpus - self.allocated_gpus
        if idle < 1 or self.pending_count == 0:
            return 0.0
        used = self.used_per_node
        free_per_node = [len(node.gpus) - used.get(node.name, 0) for node in self.nodes]
        fits_of: dict[int, int] = {}
        """Replicas of each size the free GPUs hold (shapes share sizes)."""
        for replicas, per_replica in self.waiting_shapes:
            if replicas * per_replica > idle:
                continue
            fits = fits_of.get(per_replica)
            if fits is None:
                fits = fits_of[per_replica] = sum(free // per_replica for free in free_per_node)
            if fits < replicas:
                return idle
        return 0.0

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> Outcome:
        """Replay the trace to the end.

        The cyclic collector stays off meanwhile: a replay makes next to no cyclic garbage
        (106 objects left after the first 30,000 philly-dev jobs, same peak memory), so
        its automatic passes over the records and the cycles' objects (about 500 in
        that replay) were pure cost. What the cycles build is freed by reference
        counting; every ``COLLECT_EVERY_CYCLES`` cycles the young generations are
        collected anyway, so a cycle bug that made garbage could not grow without bound.
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._replay()
        finally:
            if was_enabled:
                gc.enable()

    def _replay(self) -> Outcome:
        started_wall = time.perf_counter()
        config = self.config
        jobs = self.jobs
        next_job = 0
        last_cycle = -float("inf")
        next_cycle = float("inf")
        last_report = started_wall
        inf = float("inf")
        while True:
            arrival = jobs[next_job].submit_s if next_job < len(jobs) else inf
            completion = self.completions[0][0] if self.completions else inf
            release = self.releases[0][0] if self.releases else inf
            at = min(arrival, completion, release, next_cycle)
            if at == inf:
                break
            self.advance(at)
            changed = False
            while next_job < len(jobs) and jobs[next_job].submit_s <= at:
                self.arrive(jobs[next_job])
                next_job += 1
                changed = True
            while self.completions and self.completions[0][0] <= at:
                _, _, uid, epoch = heapq.heappop(self.completions)
                if self.records[uid].epoch == epoch:
                    self.complete(uid)
                    changed = True
            while self.releases and self.releases[0][0] <= at:
                _, _, uid, epoch = heapq.heappop(self.releases)
                record = self.records[uid]
                if record.epoch == epoch and record.finish is None:
                    self.release(uid)
                    changed = True
            due = at >= next_cycle
            if changed and not self.policy.preemptive and self.allocated_gpus >= self.total_gpus:
                changed = False  # nothing idle: a non-preemptive policy could bind nothing
            if changed or due:
                if at >= last_cycle + config.cycle_interval_s or due:
                    self.cycle()
                    last_cycle = at
                    next_cycle = inf
                    if self.pending_count and self.policy.time_dependent:
                        next_cycle = at + config.requeue_interval_s
                else:
                    next_cycle = min(next_cycle, last_cycle + config.cycle_interval_s)
            if self.progress is not None and time.perf_counter() - last_report > 5:
                last_report = time.perf_counter()
                done = sum(1 for r in self.records.values() if r.finish is not None)
                self.progress(
                    f"{self.policy.name}: t={self.now / 86400:.1f}d, {next_job}/{len(jobs)} "
                    f"arrived, {done} done, {self.pending_count} waiting, "
                    f"{self.metrics.cycles} cycles"
                )
            if not self.active and next_job >= len(jobs):
                break
            if (
                next_job >= len(jobs)
                and not self.completions
                and not self.releases
                and self.allocated_gpus <= 0
                and self.metrics.cycles > 0
                and not self.last_bound
            ):
                break  # nothing runs, nothing arrives, and the policy places nothing
        self.settle_credits()
        records = list(self.records.values())
        finishes = [r.finish for r in records if r.finish is not None]
        return Outcome(
            records=records,
            metrics=self.metrics,
            gpus=self.total_gpus,
            first_submit=jobs[0].submit_s if jobs else 0.0,
            last_finish=max(finishes) if finishes else 0.0,
            wall_s=time.perf_counter() - started_wall,
            unfinished=sum(1 for r in records if r.finish is None),
            credit_spent=dict(self.credit_spent),
        )


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
