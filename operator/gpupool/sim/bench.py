"""``gpupool-bench``: how fast is the scheduling core?

``gpupool-bench cycle`` builds a synthetic pool (default 4,000 nodes x 8 GPUs,
30,000 running and 20,000 pending workloads), runs one cold cycle, then keeps
the pool moving for ``--cycles`` cycles the way the operator would (bindings
start, preempted workloads leave after their grace period and requeue, 0.5% of
running work finishes and as much new work arrives every cycle, the clock moves
by ``--interval-s``) and times every ``run_cycle`` call. It prints p50/p99 of
those steady cycles, the cold cycle, and a replay-speed figure: jobs per second
of wall time when ``gpupool-sim`` replays a synthetic trace with the ``gpupool``
policy. Every run also times a fixed interpreter workload (:mod:`.host_reference`) and
prints the p50 cycle and the replay in units of it, which compare across hosts.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from gpupool.scheduling import (
    Allocation,
    Decisions,
    PoolConfig,
    Snapshot,
    Workload,
    WorkloadChanges,
    WorkloadUid,
    run_cycle,
)
from gpupool.scheduling.gc_pause import paused_gc
from gpupool.scheduling.model import Tier, WorkloadKind
from gpupool.sim.engine import SimConfig, Simulator
from gpupool.sim.host_reference import reference_seconds
from gpupool.sim.policies import make_policy
from gpupool.sim.synthetic import ClusterSpec, make_snapshot
from gpupool.sim.tenants import default_tenants
from gpupool.sim.trace import TraceJob


def evolve(
    snapshot: Snapshot,
    decisions: Decisions,
    *,
    interval_s: float,
    churn: float,
    rng: random.Random,
    serial: int,
) -> Snapshot:
    """The next snapshot: decisions applied, released work requeued, some work done/new
    (with the changes since ``snapshot``)."""
    now = snapshot.now + interval_s
    workloads = dict(snapshot.workloads)
    changed: dict[WorkloadUid, None] = {}
    for uid, placement in decisions.bindings.items():
        workloads[uid] = replace(
            workloads[uid], allocation=Allocation(replicas=placement, started_at=snapshot.now)
        )
        changed[uid] = None
    for uid in decisions.preemptions:
        if uid in workloads:
            workloads[uid] = replace(workloads[uid], preempted_at=snapshot.now)
            changed[uid] = None
    running = [w for w in workloads.values() if w.allocation is not None]
    for workload in running:
        allocation = workload.allocation
        assert allocation is not None
        if workload.preempted_at is not None and now - workload.preempted_at >= 120:
            workloads[workload.uid] = replace(
                workload,
                allocation=None,
                preempted_at=None,
                attained_service_s=workload.attained_service_s
                + max(0.0, workload.preempted_at - allocation.started_at),
                restarts=workload.restarts + 1,
            )
            changed[workload.uid] = None
    finished = [w for w in running if w.preempted_at is None and rng.random() < churn]
    templates = [w for w in workloads.values() if w.allocation is None]
    for index, workload in enumerate(finished):
        del workloads[workload.uid]
        changed[workload.uid] = None
        if templates:
            template = rng.choice(templates)
            uid = WorkloadUid(f"new-{serial}-{index}")
            workloads[uid] = replace(
                template, uid=uid, name=uid, submitted_at=now, attained_service_s=0.0
            )
            changed[uid] = None
    return replace(
        snapshot,
        now=now,
        workloads=workloads,
        changes=WorkloadChanges(since=snapshot.workloads, workloads=workloads, uids=tuple(changed)),
    )


def bench_cycle(args: argparse.Namespace) -> dict[str, object]:
    spec = ClusterSpec(
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        running=args.running,
        pending=args.pending,
        seed=args.seed,
    )
    config = PoolConfig()
    started = time.perf_counter()
    snapshot = make_snapshot(spec)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    with paused_gc():
        decisions = run_cycle(snapshot, config)
    cold_s = time.perf_counter() - started
    rng = random.Random(args.seed)
    times: list[float] = []
    cpu_times: list[float] = []
    evolve_times: list[float] = []
    for serial in range(args.cycles):
        started = time.perf_counter()
        snapshot = evolve(
            snapshot, decisions, interval_s=args.interval_s, churn=0.005, rng=rng, serial=serial
        )
        evolve_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        cpu_started = time.process_time()
        with paused_gc():
            decisions = run_cycle(snapshot, config)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
        _progress(
            f"cycle {serial + 1}/{args.cycles}: {times[-1] * 1000:.0f} ms, "
            f"{len(decisions.bindings)} bound, {len(decisions.preemptions)} preempted"
        )
    ordered = sorted(times)
    running = sum(1 for w in snapshot.workloads.values() if w.allocation is not None)
    return {
        "bench": "cycle",
        "nodes": args.nodes,
        "gpus": args.nodes * args.gpus_per_node,
        "running": running,
        "pending": len(snapshot.workloads) - running,
        "cycles": len(times),
        "p50_cycle_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_cycle_ms": round(_percentile(ordered, 0.99) * 1000, 1),
        "max_cycle_ms": round(ordered[-1] * 1000, 1),
        "p50_cycle_cpu_ms": round(statistics.median(cpu_times) * 1000, 1),
        "p99_cycle_cpu_ms": round(_percentile(sorted(cpu_times), 0.99) * 1000, 1),
        "cold_cycle_ms": round(cold_s * 1000, 1),
        "snapshot_build_ms": round(build_s * 1000, 1),
        "snapshot_evolve_p50_ms": round(statistics.median(evolve_times) * 1000, 1),
    }


def synthetic_trace(jobs: int, *, seed: int, gpus: int) -> list[TraceJob]:
    """A seeded trace: Poisson arrivals at ~90% load, heavy-tailed durations, 1-8 GPUs."""
    rng = random.Random(seed)
    sizes = [1] * 80 + [2] * 6 + [4] * 8 + [8] * 6
    durations = [rng.lognormvariate(7.0, 2.0) for _ in range(jobs)]
    mean_work = sum(durations) / max(1, jobs) * sum(sizes) / len(sizes)
    gap = mean_work / (0.9 * gpus)
    now = 0.0
    out: list[TraceJob] = []
    for index, duration in enumerate(durations):
        now += rng.expovariate(1.0 / gap)
        out.append(
            TraceJob(
                job_id=f"syn-{index:06d}",
                submit_s=round(now, 1),
                duration_s=max(10.0, round(duration, 1)),
                gpus=float(rng.choice(sizes)),
                tenant=f"team-{rng.randrange(6)}",
                tier=Tier.NORMAL,
                kind=WorkloadKind.TRAINING,
            )
        )
    return out


def bench_replay(args: argparse.Namespace) -> dict[str, object]:
    nodes, per_node = 32, 8
    jobs = synthetic_trace(args.replay_jobs, seed=args.seed, gpus=nodes * per_node)
    simulator = Simulator(
        jobs,
        policy=make_policy("gpupool", config=PoolConfig(), durations={}),
        tenants=default_tenants({job.tenant for job in jobs}, total_gpus=nodes * per_node),
        config=SimConfig(nodes=nodes, gpus_per_node=per_node),
    )
    started = time.perf_counter()
    outcome = simulator.run()
    wall = time.perf_counter() - started
    return {
        "replay_jobs": len(jobs),
        "replay_cycles": outcome.metrics.cycles,
        "replay_wall_s": round(wall, 2),
        "replay_jobs_per_s": round(len(jobs) / wall, 1) if wall > 0 else 0.0,
    }


def host_figures(result: dict[str, object], reference_s: float) -> dict[str, object]:
    """The host reference (:mod:`.host_reference`) and the timings above in units of it:
    what stays comparable between hosts of different speed."""
    figures: dict[str, object] = {"host_reference_ms": round(reference_s * 1000, 1)}
    for key, name, per_second in (
        ("p50_cycle_ms", "p50_cycle_per_reference", 1000.0),
        ("replay_wall_s", "replay_wall_per_reference", 1.0),
    ):
        value = result.get(key)
        if isinstance(value, float) and reference_s > 0:
            figures[name] = round(value / per_second / reference_s, 2)
    return figures


def _percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return 0.0
    position = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[position]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpupool-bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cycle = sub.add_parser("cycle", help="time run_cycle on a large synthetic pool")
    cycle.add_argument("--nodes", type=int, default=4000)
    cycle.add_argument("--gpus-per-node", type=int, default=8)
    cycle.add_argument("--running", type=int, default=30_000)
    cycle.add_argument("--pending", type=int, default=20_000)
    cycle.add_argument("--cycles", type=int, default=20)
    cycle.add_argument("--interval-s", type=float, default=5.0)
    cycle.add_argument("--seed", type=int, default=7)
    cycle.add_argument(
        "--replay-jobs",
        type=int,
        default=5000,
        help="jobs in the synthetic trace replayed for the replay-speed figure (0: skip)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    reference = reference_seconds()
    result = bench_cycle(args)
    if args.replay_jobs > 0:
        _progress(f"replaying {args.replay_jobs} synthetic jobs with gpupool on 32 x 8 GPUs")
        result.update(bench_replay(args))
    result.update(host_figures(result, reference))
    print(json.dumps(result))
    return 0


__all__ = ["Workload", "bench_cycle", "evolve", "main"]


if __name__ == "__main__":
    sys.exit(main())
