"""``gpupool run`` (the operator) and ``gpupool status`` (tables from the API)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from collections.abc import Sequence

from gpupool.k8s import names
from gpupool.k8s.client import RestKubeClient
from gpupool.k8s.errors import ApiError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpupool", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch workloads only in this namespace (repeatable; default: all)",
    )
    run.add_argument(
        "--pool",
        action="append",
        default=[],
        help="schedule only this GPUPool (repeatable; default: every pool)",
    )
    run.add_argument("--metrics-port", type=int, default=8080, help="0 disables /metrics")
    run.add_argument("--log-format", choices=("plain", "full", "json"), default="plain")
    run.add_argument("-v", "--verbose", action="count", default=0)
    run.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        help="namespace of the leader-election Lease",
    )
    run.add_argument("--lease-name", default="gpupool-scheduler")
    run.add_argument("--lease-duration", type=int, default=15, help="seconds")
    run.add_argument(
        "--identity", default=None, help="this replica's name in the Lease (default: host-pid)"
    )
    run.add_argument(
        "--require-telemetry",
        action="store_true",
        help="take nodes without node-agent telemetry out of the pool",
    )
    run.add_argument("--telemetry-stale-seconds", type=float, default=90.0)
    run.add_argument("--resync-seconds", type=float, default=300.0)
    run.add_argument(
        "--write-threads", type=int, default=16, help="parallel API writes of the actuator"
    )
    run.add_argument("--liveness", default=None, help="e.g. http://0.0.0.0:8081/healthz")

    status = commands.add_parser("status", help="print pools, tenants, queue and prices")
    status.add_argument("--pool", default=None)
    status.add_argument("--limit", type=int, default=40, help="workload rows to show")

    commands.add_parser("agent", help="run the node agent (see gpupool.telemetry.agent)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["agent"]:
        from gpupool.telemetry.agent import main as agent_main  # noqa: PLC0415 (optional part)

        return agent_main(arguments[1:])
    args = _parser().parse_args(arguments)
    if args.command == "status":
        return status(pool=args.pool, limit=args.limit)
    return run(args)


def status(*, pool: str | None, limit: int) -> int:
    from gpupool.status_report import render  # noqa: PLC0415

    client = RestKubeClient.from_environment()
    try:
        pools = client.list_custom_objects(plural=names.POOL_PLURAL).items
        jobs = client.list_custom_objects(plural=names.TRAINING_JOB_PLURAL).items
        services = client.list_custom_objects(plural=names.INFERENCE_SERVICE_PLURAL).items
    except ApiError as error:
        print(f"gpupool status: {error}", file=sys.stderr)
        return 1
    print(render(pools, jobs, services, pool=pool))
    return 0


def run(args: argparse.Namespace) -> int:
    import kopf  # noqa: PLC0415 (kopf is only needed by the operator itself)

    from gpupool.loop.leader import LeaderElector  # noqa: PLC0415
    from gpupool.metrics import OperatorMetrics  # noqa: PLC0415
    from gpupool.reconcilers.registry import build_registry  # noqa: PLC0415
    from gpupool.reconcilers.runtime import OperatorRuntime  # noqa: PLC0415
    from gpupool.state.cache import ClusterCache  # noqa: PLC0415
    from gpupool.state.snapshot import SnapshotSettings  # noqa: PLC0415
    from gpupool.telemetry.annotations import decode_node_telemetry  # noqa: PLC0415

    log_format = {
        "plain": kopf.LogFormat.PLAIN,
        "full": kopf.LogFormat.FULL,
        "json": kopf.LogFormat.JSON,
    }[args.log_format]
    kopf.configure(verbose=args.verbose >= 1, debug=args.verbose >= 2, log_format=log_format)
    logging.getLogger("gpupool").setLevel(logging.DEBUG if args.verbose >= 2 else logging.INFO)
    if args.verbose == 0:
        logging.getLogger("kopf").setLevel(logging.WARNING)

    client = RestKubeClient.from_environment(pool_size=max(16, args.write_threads + 4))
    identity = args.identity or f"{socket.gethostname()}-{os.getpid()}"
    metrics = OperatorMetrics()
    runtime = OperatorRuntime(
        client=client,
        cache=ClusterCache(),
        elector=LeaderElector(
            client=client,
            name=args.lease_name,
            namespace=args.lease_namespace,
            identity=identity,
            duration_s=args.lease_duration,
        ),
        metrics=metrics,
        identity=identity,
        clock=time.time,
        telemetry_parser=decode_node_telemetry,
        snapshot_settings=SnapshotSettings(
            telemetry_stale_after_s=args.telemetry_stale_seconds,
            require_telemetry=args.require_telemetry,
        ),
        resync_interval_s=args.resync_seconds,
        write_threads=args.write_threads,
        pools=frozenset(args.pool) or None,
    )
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    logging.getLogger("gpupool").info(
        "gpupool operator %s starting (lease %s/%s)",
        identity,
        args.lease_namespace,
        args.lease_name,
    )
    kopf.run(
        registry=build_registry(),
        memo=kopf.Memo(runtime=runtime),
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness,
    )
    return 0
