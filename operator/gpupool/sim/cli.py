"""``gpupool-sim``: replay a jobs CSV through a scheduling policy and print its figures.

    gpupool-sim --trace shared/traces/philly-dev.jobs.csv --policy gpupool \\
        --nodes 32 --gpus-per-node 8 --json

Prints one JSON object (``--json``) or the same figures as ``key: value`` lines.
Bad input never ends in a traceback: a malformed row is an error naming its line
(or, with ``--skip-bad-rows``, skipped and counted in ``skipped_bad_rows``); a
job larger than the whole pool is skipped and counted in ``skipped_too_large``.
Progress goes to stderr every few seconds (``--quiet`` silences it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from gpupool.scheduling import PoolConfig
from gpupool.sim.engine import SimConfig, Simulator, stderr_progress
from gpupool.sim.metrics import jcts, summarize
from gpupool.sim.policies import POLICY_NAMES, make_policy
from gpupool.sim.tenants import TenantsError, budget_tenants, default_tenants, load_tenants
from gpupool.sim.trace import TraceError, read_trace, split_placeable


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpupool-sim",
        description="Replay a jobs CSV through a scheduling policy (discrete-event).",
    )
    parser.add_argument("--trace", required=True, help="jobs CSV (shared/traces/README.md)")
    parser.add_argument("--policy", default="gpupool", choices=POLICY_NAMES)
    parser.add_argument("--nodes", type=_positive_int, default=32)
    parser.add_argument("--gpus-per-node", type=_positive_int, default=8)
    parser.add_argument(
        "--tenants",
        help="YAML/JSON tenant terms (default: equal guarantees over half the pool; "
        "see gpupool.sim.tenants)",
    )
    parser.add_argument(
        "--budgets",
        action="store_true",
        help="without --tenants: give the default tenants budgets (2 credits per GPU-hour "
        "of their equal share) instead of unmetered credits",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--limit", type=_positive_int, help="replay only the first N jobs")
    parser.add_argument(
        "--skip-bad-rows", action="store_true", help="skip malformed rows instead of failing"
    )
    parser.add_argument("--cycle-interval-s", type=_positive_float, default=60.0)
    parser.add_argument("--requeue-interval-s", type=_positive_float, default=300.0)
    parser.add_argument("--restart-overhead-s", type=_non_negative_float, default=30.0)
    parser.add_argument("--jct-out", help="write each finished job's JCT (s), one per line")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def run(args: argparse.Namespace) -> dict[str, object]:
    trace = read_trace(args.trace, strict=not args.skip_bad_rows, limit=args.limit)
    for example in trace.skipped_examples:
        print(f"gpupool-sim: skipped {example}", file=sys.stderr)
    jobs, too_large = split_placeable(
        trace.jobs, nodes=args.nodes, gpus_per_node=args.gpus_per_node
    )
    for job in too_large[:5]:
        print(
            f"gpupool-sim: skipped {trace.path}:{job.line}: job {job.job_id} needs "
            f"{job.gpus:g} GPUs, more than the pool's {args.nodes * args.gpus_per_node}",
            file=sys.stderr,
        )
    total_gpus = args.nodes * args.gpus_per_node
    tenant_names = {job.tenant for job in jobs}
    tenants = (
        load_tenants(args.tenants, trace_tenants=tenant_names, total_gpus=total_gpus)
        if args.tenants
        else (budget_tenants if args.budgets else default_tenants)(
            tenant_names, total_gpus=total_gpus
        )
    )
    pool = PoolConfig()
    policy = make_policy(
        args.policy, config=pool, durations={job.job_id: job.duration_s for job in jobs}
    )
    simulator = Simulator(
        jobs,
        policy=policy,
        tenants=tenants,
        config=SimConfig(
            nodes=args.nodes,
            gpus_per_node=args.gpus_per_node,
            cycle_interval_s=args.cycle_interval_s,
            requeue_interval_s=args.requeue_interval_s,
            restart_overhead_s=args.restart_overhead_s,
        ),
        progress=None if args.quiet else stderr_progress,
    )
    outcome = simulator.run()
    summary = summarize(outcome, policy=args.policy + ("+budgets" if args.budgets else ""))
    summary["skipped_bad_rows"] = trace.skipped
    summary["skipped_too_large"] = len(too_large)
    summary["unfinished"] = outcome.unfinished
    if args.jct_out:
        Path(args.jct_out).write_text(
            "".join(f"{value:.1f}\n" for value in jcts(outcome)), encoding="utf-8"
        )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = run(args)
    except (TraceError, TenantsError, OSError) as error:
        print(f"gpupool-sim: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpupool-sim: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
