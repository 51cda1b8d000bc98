"""``gpupool-agent``: reads GPU telemetry, publishes it on Node objects, serves metrics.

Real nodes (a DaemonSet, one agent per GPU node, ``NODE_NAME`` from the
Downward API)::

    gpupool-agent --node-name $NODE_NAME --metrics-port 9400

Local kwok cluster (one process simulates every selected node)::

    gpupool-agent --simulated --nodes-selector type=kwok --faults faults.yaml

Each tick (``--interval-s``) reads every GPU, updates the Prometheus series and,
per node, writes the ``gpupool.io/telemetry`` annotation only when
:func:`gpupool.telemetry.change.decide_publish` says so (meaningful change or
heartbeat; see that module for the write-load reasoning). ``--dry-run`` prints
the writes instead of patching Nodes (no cluster needed), ``--once`` runs one
tick. A missing NVML library or driver ends the agent at start with one line
and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from prometheus_client import start_http_server

from gpupool.k8s.client import RestKubeClient
from gpupool.k8s.errors import ApiError
from gpupool.scheduling.config import HealthThresholds
from gpupool.scheduling.model import NodeName
from gpupool.telemetry.annotations import encode_node_telemetry
from gpupool.telemetry.change import PublishDecision, Published, PublishPolicy, decide_publish
from gpupool.telemetry.metrics import AgentMetrics
from gpupool.telemetry.model import TelemetrySource, TelemetryUnavailable
from gpupool.telemetry.nvml_source import NVMLSource
from gpupool.telemetry.publish import ApiTelemetryPublisher, PrintingWriter, TelemetryWriter
from gpupool.telemetry.sim_inputs import SimulatedInputs, SimulatedInputSettings
from gpupool.telemetry.sim_source import SimulatedSource

log = logging.getLogger("gpupool.agent")

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True, kw_only=True)
class TickReport:
    nodes: int
    writes: int
    failed_writes: int


class Agent:
    """One tick = read all GPUs, export metrics, write the nodes whose report changed."""

    def __init__(
        self,
        *,
        source: TelemetrySource,
        writer: TelemetryWriter,
        metrics: AgentMetrics,
        policy: PublishPolicy,
        clock: Clock,
    ) -> None:
        self._source = source
        self._writer = writer
        self._metrics = metrics
        self._policy = policy
        self._clock = clock
        self._published: dict[NodeName, Published] = {}
        self._failing: set[NodeName] = set()

    def tick(self) -> TickReport:
        now = self._clock()
        started = time.perf_counter()
        reports = self._source.read(now=now)
        self._metrics.read_seconds.observe(time.perf_counter() - started)
        writes = failed = 0
        for report in reports:
            self._metrics.observe(report)
            decision = decide_publish(
                last=self._published.get(report.node), current=report, now=now, policy=self._policy
            )
            if not decision.write:
                continue
            kind = _write_kind(decision)
            try:
                self._writer.write_node_annotations(
                    node=report.node, annotations=encode_node_telemetry(report)
                )
            except ApiError as error:
                failed += 1
                self._metrics.api_writes.labels(kind, "error").inc()
                if report.node not in self._failing:
                    self._failing.add(report.node)
                    log.warning("cannot publish telemetry of %s: %s", report.node, error)
                continue
            writes += 1
            self._metrics.api_writes.labels(kind, "ok").inc()
            if report.node in self._failing:
                self._failing.discard(report.node)
                log.info("publishing telemetry of %s again", report.node)
            if decision.urgent:
                log.info("%s: %s", report.node, "; ".join(decision.reasons))
            self._published[report.node] = Published(telemetry=report, at=now)
        self._forget_missing({report.node for report in reports})
        return TickReport(nodes=len(reports), writes=writes, failed_writes=failed)

    def _forget_missing(self, present: set[NodeName]) -> None:
        for node in [node for node in self._published if node not in present]:
            del self._published[node]
            self._metrics.forget_node(node)


def _write_kind(decision: PublishDecision) -> str:
    if decision.urgent:
        return "urgent"
    return "heartbeat" if decision.reasons == ("heartbeat",) else "change"


def run_loop(
    *,
    agent: Agent,
    interval_s: float,
    clock: Clock,
    stop: threading.Event,
    before_tick: Callable[[float], None] | None = None,
) -> None:
    """Tick every ``interval_s`` on ``clock`` until ``stop`` is set (missed ticks are skipped)."""
    next_at = clock()
    while not stop.is_set():
        if before_tick is not None:
            before_tick(clock())
        agent.tick()
        next_at += interval_s
        now = clock()
        next_at = max(next_at, now)
        stop.wait(next_at - now)


# --------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gpupool-agent", description="Publish GPU telemetry on Node objects."
    )
    mode = parser.add_argument_group("mode")
    mode.add_argument(
        "--node-name",
        default=os.environ.get("NODE_NAME") or socket.gethostname(),
        help="this node's name (NVML mode; default $NODE_NAME, else the host name)",
    )
    mode.add_argument("--simulated", action="store_true", help="simulate GPUs of kwok nodes")
    mode.add_argument("--nodes-selector", default="type=kwok", help="simulated: node labels")
    mode.add_argument(
        "--pods-selector", default="gpupool.io/role", help="simulated: pods that load GPUs"
    )
    mode.add_argument("--faults", type=Path, help="simulated: YAML/JSON fault script, re-read")
    mode.add_argument("--seed", type=int, default=0, help="simulated: noise seed")
    timing = parser.add_argument_group("timing")
    timing.add_argument("--interval-s", type=float, default=1.0, help="seconds between reads")
    timing.add_argument("--heartbeat-s", type=float, default=30.0, help="write at least this often")
    timing.add_argument(
        "--min-interval-s", type=float, default=5.0, help="least seconds between non-urgent writes"
    )
    health = parser.add_argument_group("health thresholds (for metrics and urgency)")
    health.add_argument("--max-temperature-c", type=float, default=90.0)
    health.add_argument("--evict-on-xid", default="48,63,64,74,79", help="comma-separated XIDs")
    health.add_argument("--max-uncorrected-ecc", type=int, default=0)
    output = parser.add_argument_group("output")
    output.add_argument(
        "--metrics-port", type=int, default=9400, help="Prometheus port (0: no endpoint)"
    )
    output.add_argument("--metrics-address", default="0.0.0.0")
    output.add_argument("--dry-run", action="store_true", help="print writes, touch no cluster")
    output.add_argument("--once", action="store_true", help="one tick, then exit")
    output.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    thresholds = HealthThresholds(
        max_temperature_c=args.max_temperature_c,
        evict_on_xid=frozenset(int(x) for x in args.evict_on_xid.split(",") if x.strip()),
        max_uncorrected_ecc_errors=args.max_uncorrected_ecc,
    )
    policy = PublishPolicy(
        heartbeat_s=args.heartbeat_s, min_interval_s=args.min_interval_s, thresholds=thresholds
    )
    clock: Clock = time.time
    try:
        return _run(args, policy=policy, thresholds=thresholds, clock=clock)
    except TelemetryUnavailable as error:
        log.error("GPU telemetry unavailable: %s", error)
        return 2


def _run(
    args: argparse.Namespace, *, policy: PublishPolicy, thresholds: HealthThresholds, clock: Clock
) -> int:
    needs_cluster = args.simulated or not args.dry_run
    api = ApiTelemetryPublisher(RestKubeClient.from_environment()) if needs_cluster else None
    writer: TelemetryWriter = api if api is not None and not args.dry_run else PrintingWriter()
    before_tick: Callable[[float], None] | None = None
    source: TelemetrySource
    if api is not None and args.simulated:
        simulated = SimulatedSource(nodes=(), seed=args.seed, started_at=clock())
        inputs = SimulatedInputs(
            source=simulated,
            cluster=api,
            settings=SimulatedInputSettings(
                nodes_selector=args.nodes_selector,
                pods_selector=args.pods_selector,
                faults_path=args.faults,
            ),
        )
        source, before_tick = simulated, lambda now: inputs.refresh(now=now)
    else:
        source = NVMLSource.start(node=NodeName(args.node_name))

    metrics = AgentMetrics(thresholds=thresholds)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address, registry=metrics.registry)
        log.info("metrics on :%d/metrics", args.metrics_port)
    agent = Agent(source=source, writer=writer, metrics=metrics, policy=policy, clock=clock)
    stop = threading.Event()
    if args.once:
        stop.set()
        if before_tick is not None:
            before_tick(clock())
        agent.tick()
    else:
        _stop_on_signals(stop)
        mode = "simulated" if args.simulated else "nvml"
        log.info("started (%s), reading every %.1fs", mode, args.interval_s)
        run_loop(
            agent=agent, interval_s=args.interval_s, clock=clock, stop=stop, before_tick=before_tick
        )
    source.close()
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


if __name__ == "__main__":
    raise SystemExit(main())
