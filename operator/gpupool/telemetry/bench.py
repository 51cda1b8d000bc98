"""Figures of the telemetry agent: ``python -m gpupool.telemetry.bench [--json]``.

1. Agent CPU time per read per GPU (process CPU time, not wall time):
   the simulated source; the NVML adapter over the in-process fake ``pynvml``
   (:mod:`gpupool.telemetry.nvml_fake`; this measures the adapter's own overhead,
   not the driver's calls, which only a GPU machine can); and a whole agent tick
   (read + Prometheus update + publish decision + encoding what is written; no
   network). The first tick (every node written) is included.
2. API writes per node per minute, from the pure change detector
   (:func:`~gpupool.telemetry.change.decide_publish`) over a simulated hour at a
   1 s read interval: steady state (constant workloads) and churn (every GPU
   alternates between idle and a random workload, exponential holding times
   with mean ``--churn-mean-s``), with and without XID faults.
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from gpupool.scheduling.config import HealthThresholds
from gpupool.scheduling.model import NodeName
from gpupool.telemetry.annotations import encode_node_telemetry
from gpupool.telemetry.change import Published, PublishPolicy, decide_publish
from gpupool.telemetry.faults import Fault, FaultKind, FaultScript
from gpupool.telemetry.metrics import AgentMetrics
from gpupool.telemetry.nvml_fake import FakeNvml, hgx_gpus
from gpupool.telemetry.nvml_source import NVMLSource
from gpupool.telemetry.sim_load import GPULoad, LoadLookup, lookup_in
from gpupool.telemetry.sim_nodes import simulated_node
from gpupool.telemetry.sim_source import SimulatedSource

T0 = 1_700_000_000.0
GPUS_PER_NODE = 8


def _cluster(nodes: int) -> tuple[SimulatedSource, int]:
    specs = [simulated_node(f"gpu-node-{i:04d}", gpu_count=GPUS_PER_NODE) for i in range(nodes)]
    busy = GPULoad(memory_mib=73_000, utilization_pct=95.0)
    loads = {(spec.name, gpu): busy for spec in specs for gpu in range(0, GPUS_PER_NODE, 2)}
    return SimulatedSource(nodes=specs, seed=1, started_at=T0, loads=lookup_in(loads)), len(
        specs
    ) * GPUS_PER_NODE


def cpu_per_read_per_gpu_simulated(*, nodes: int, reads: int) -> float:
    source, gpus = _cluster(nodes)
    started = time.process_time()
    for tick in range(reads):
        source.read(now=T0 + tick)
    return (time.process_time() - started) / reads / gpus


def cpu_per_read_per_gpu_nvml_fake(*, gpus: int, reads: int) -> float:
    source = NVMLSource.start(node=NodeName("bench"), nvml=FakeNvml(hgx_gpus(gpus)).module())
    source.read(now=T0)  # the first read also reads ECC counters once
    started = time.process_time()
    for tick in range(reads):
        source.read(now=T0 + tick)
    elapsed = time.process_time() - started
    source.close()
    return elapsed / reads / gpus


def cpu_per_tick_per_gpu_agent(*, nodes: int, ticks: int) -> float:
    """Read + metrics + decision of every node, encoding the ones written (no network)."""
    source, gpus = _cluster(nodes)
    metrics = AgentMetrics(thresholds=HealthThresholds())
    policy = PublishPolicy()
    published: dict[NodeName, Published] = {}
    started = time.process_time()
    for tick in range(ticks):
        now = T0 + tick
        for report in source.read(now=now):
            metrics.observe(report)
            decision = decide_publish(
                last=published.get(report.node), current=report, now=now, policy=policy
            )
            if decision.write:
                encode_node_telemetry(report)
                published[report.node] = Published(telemetry=report, at=now)
    return (time.process_time() - started) / ticks / gpus


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteRate:
    scenario: str
    nodes: int
    minutes: float
    writes_per_node_minute: float
    by_kind_per_node_minute: dict[str, float]
    workload_changes_per_node_minute: float


class _ChurningLoads:
    """Per GPU, alternating idle and busy periods drawn from a seeded RNG."""

    def __init__(self, *, nodes: Sequence[NodeName], seconds: float, mean_s: float, seed: int):
        rng = random.Random(seed)
        self.now = T0
        self._changes: dict[tuple[NodeName, int], tuple[list[float], list[GPULoad]]] = {}
        self.change_count = 0
        for node in nodes:
            for gpu in range(GPUS_PER_NODE):
                times, loads = [T0], [GPULoad()]
                t, busy = T0, False
                while t < T0 + seconds:
                    t += rng.expovariate(1.0 / mean_s)
                    busy = not busy
                    load = (
                        GPULoad(
                            memory_mib=rng.randint(16_000, 76_000),
                            utilization_pct=rng.uniform(40.0, 98.0),
                        )
                        if busy
                        else GPULoad()
                    )
                    times.append(t)
                    loads.append(load)
                    self.change_count += t < T0 + seconds
                self._changes[(node, gpu)] = (times, loads)

    def __call__(self, node: NodeName, gpu: int) -> GPULoad:
        times, loads = self._changes[(node, gpu)]
        return loads[bisect.bisect_right(times, self.now) - 1]


def write_rate(
    *, scenario: str, nodes: int, minutes: float, churn_mean_s: float, xids_per_node_hour: float
) -> WriteRate:
    """API writes the change detector asks for over ``minutes`` of 1 s reads."""
    seconds = minutes * 60.0
    specs = [simulated_node(f"gpu-node-{i:04d}", gpu_count=GPUS_PER_NODE) for i in range(nodes)]
    names = [spec.name for spec in specs]
    churn = scenario.startswith("churn")
    churning = _ChurningLoads(nodes=names, seconds=seconds, mean_s=churn_mean_s, seed=7)
    steady = lookup_in(
        {
            (name, gpu): GPULoad(memory_mib=73_000, utilization_pct=95.0)
            for name in names
            for gpu in range(0, GPUS_PER_NODE, 2)
        }
    )
    loads: LoadLookup = churning if churn else steady
    rng = random.Random(11)
    faults = tuple(
        Fault(
            at_s=rng.uniform(0, seconds),
            node=name,
            gpu=rng.randrange(GPUS_PER_NODE),
            kind=FaultKind.XID,
            xid=rng.choice((13, 31, 43, 79)),
        )
        for name in names
        for _ in range(round(xids_per_node_hour * minutes / 60.0))
    )
    source = SimulatedSource(
        nodes=specs, seed=3, started_at=T0, loads=loads, faults=FaultScript(faults)
    )
    policy = PublishPolicy()
    published: dict[NodeName, Published] = {}
    kinds: Counter[str] = Counter()
    for tick in range(int(seconds)):
        now = T0 + tick
        churning.now = now
        for report in source.read(now=now):
            decision = decide_publish(
                last=published.get(report.node), current=report, now=now, policy=policy
            )
            if decision.write:
                kind = "heartbeat" if decision.reasons == ("heartbeat",) else "change"
                kinds["urgent" if decision.urgent else kind] += 1
                published[report.node] = Published(telemetry=report, at=now)
    node_minutes = nodes * minutes
    return WriteRate(
        scenario=scenario,
        nodes=nodes,
        minutes=minutes,
        writes_per_node_minute=round(sum(kinds.values()) / node_minutes, 2),
        by_kind_per_node_minute={k: round(v / node_minutes, 2) for k, v in sorted(kinds.items())},
        workload_changes_per_node_minute=round(
            churning.change_count / node_minutes if churn else 0.0, 2
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpupool.telemetry.bench")
    parser.add_argument("--nodes", type=int, default=10, help="nodes in the write-rate hour")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--churn-mean-s", type=float, default=120.0)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    parser.add_argument("--quick", action="store_true", help="tiny CPU samples (smoke test)")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1

    cpu = {
        "simulated_read_us_per_gpu": cpu_per_read_per_gpu_simulated(
            nodes=125 // scale, reads=40 // scale
        )
        * 1e6,
        "nvml_adapter_over_fake_pynvml_read_us_per_gpu": cpu_per_read_per_gpu_nvml_fake(
            gpus=8, reads=2000 // scale
        )
        * 1e6,
        "agent_tick_simulated_us_per_gpu": cpu_per_tick_per_gpu_agent(
            nodes=125 // scale, ticks=40 // scale
        )
        * 1e6,
    }
    rates = [
        write_rate(
            scenario=scenario,
            nodes=args.nodes,
            minutes=args.minutes,
            churn_mean_s=args.churn_mean_s,
            xids_per_node_hour=xids,
        )
        for scenario, xids in (("steady", 0.0), ("churn", 0.0), ("churn+xid", 2.0))
    ]
    if args.json:
        document = {"cpu": {k: round(v, 2) for k, v in cpu.items()}}
        document["writes"] = [asdict(rate) for rate in rates]  # type: ignore[assignment]
        print(json.dumps(document, indent=1))
        return 0
    print("agent CPU time per read per GPU (process CPU):")
    print(f"  simulated source                  {cpu['simulated_read_us_per_gpu']:8.2f} us")
    print(
        "  NVML adapter, fake pynvml module  "
        f"{cpu['nvml_adapter_over_fake_pynvml_read_us_per_gpu']:8.2f} us"
        "  (adapter overhead only; no driver)"
    )
    print(
        "  whole agent tick, simulated       "
        f"{cpu['agent_tick_simulated_us_per_gpu']:8.2f} us  (read+metrics+decide+encode writes)"
    )
    print(
        f"API writes per node per minute ({args.nodes} nodes x {GPUS_PER_NODE} GPUs,"
        f" {args.minutes:g} min at 1 s reads; writing every read would be 60):"
    )
    for rate in rates:
        kinds = ", ".join(f"{k} {v}" for k, v in rate.by_kind_per_node_minute.items())
        churn = (
            f"; workload changes {rate.workload_changes_per_node_minute}/node/min"
            if rate.workload_changes_per_node_minute
            else ""
        )
        print(f"  {rate.scenario:10s} {rate.writes_per_node_minute:6.2f}  ({kinds}{churn})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
