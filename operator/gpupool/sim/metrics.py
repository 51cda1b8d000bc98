"""Summary figures of one replay (definitions in SCHEDULING.md, "Trace simulator").

* JCT = finish - submit; wait = JCT - duration (time not spent making progress);
* makespan = last finish - first submit;
* utilization = busy GPU-seconds / (GPUs x makespan), busy meaning held by a job;
* finish-time fairness rho_i = JCT_i / (duration_i x max(1, N_i / GPUs)), N_i the mean
  number of jobs in the system during job i's life (Themis);
* unallocatable idle = GPU-seconds idle while a waiting job small enough for the idle
  GPUs could not be placed on them (fragmentation), over GPUs x makespan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gpupool.sim.engine import Outcome


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def jcts(outcome: Outcome) -> list[float]:
    return sorted(r.finish - r.job.submit_s for r in outcome.records if r.finish is not None)


def summarize(outcome: Outcome, *, policy: str) -> dict[str, object]:
    finished = [r for r in outcome.records if r.finish is not None]
    jct = sorted(r.finish - r.job.submit_s for r in finished if r.finish is not None)
    waits = [
        max(0.0, r.finish - r.job.submit_s - r.job.duration_s)
        for r in finished
        if r.finish is not None
    ]
    makespan = max(0.0, outcome.last_finish - outcome.first_submit)
    gpus = outcome.gpus
    ftf: list[float] = []
    for record in finished:
        assert record.finish is not None
        life = record.finish - record.job.submit_s
        if life <= 0:
            ftf.append(1.0)
            continue
        # The simulator keeps the integral of the job count; the mean over a life is
        # the integral's growth over it. Finish areas are stored at completion.
        mean_jobs = record_mean_jobs(record.area_at_submit, record.area_at_finish, life)
        contention = max(1.0, mean_jobs / gpus)
        ftf.append(life / (record.job.duration_s * contention))
    preemptions = sum(r.preemptions for r in outcome.records)
    count = len(outcome.records)
    capacity_s = gpus * makespan
    return {
        "policy": policy,
        "jobs": count,
        "finished": len(finished),
        "gpus": gpus,
        "avg_jct_s": _round(sum(jct) / len(jct) if jct else 0.0),
        "p50_jct_s": _round(percentile(jct, 0.50)),
        "p95_jct_s": _round(percentile(jct, 0.95)),
        "p99_jct_s": _round(percentile(jct, 0.99)),
        "avg_wait_s": _round(sum(waits) / len(waits) if waits else 0.0),
        "makespan_s": _round(makespan),
        "utilization": round(outcome.metrics.busy_gpu_s / capacity_s, 4) if capacity_s else 0.0,
        "worst_ftf": round(max(ftf), 2) if ftf else 0.0,
        "pct_ftf_over_1_05": round(100.0 * sum(1 for x in ftf if x > 1.05) / len(ftf), 2)
        if ftf
        else 0.0,
        "preemptions_per_job": round(preemptions / count, 4) if count else 0.0,
        "unallocatable_idle_gpu_fraction": round(
            outcome.metrics.unallocatable_idle_gpu_s / capacity_s, 5
        )
        if capacity_s
        else 0.0,
        "preemptions_by_cause": dict(sorted(outcome.metrics.preemptions_by_cause.items())),
        "cycles": outcome.metrics.cycles,
        "cycle_wall_s": round(outcome.metrics.cycle_wall_s, 2),
        "sim_wall_s": round(outcome.wall_s, 2),
    }


def record_mean_jobs(area_at_submit: float, area_at_finish: float, life: float) -> float:
    return (area_at_finish - area_at_submit) / life if life > 0 else 0.0


def _round(value: float) -> float:
    return round(value, 1)
