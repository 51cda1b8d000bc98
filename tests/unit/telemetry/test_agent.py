"""The agent's tick against our own boundaries: a simulated source and a recording writer."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from gpupool.k8s.bodies import Manifest
from gpupool.k8s.errors import ApiError
from gpupool.scheduling.config import HealthThresholds
from gpupool.scheduling.model import NodeName
from gpupool.telemetry.agent import Agent, run_loop
from gpupool.telemetry.annotations import parse_node_telemetry
from gpupool.telemetry.change import PublishPolicy
from gpupool.telemetry.faults import Fault, FaultKind, dump_fault_script
from gpupool.telemetry.metrics import AgentMetrics
from gpupool.telemetry.sim_inputs import SimulatedInputs, SimulatedInputSettings
from gpupool.telemetry.sim_nodes import simulated_node
from gpupool.telemetry.sim_source import SimulatedSource

A = NodeName("gpu-node-000")
B = NodeName("gpu-node-001")
T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingWriter:
    def __init__(self) -> None:
        self.writes: list[tuple[NodeName, dict[str, str]]] = []
        self.fail_with: ApiError | None = None

    def write_node_annotations(self, *, node: NodeName, annotations: Mapping[str, str]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.writes.append((node, dict(annotations)))

    def last_for(self, node: NodeName) -> dict[str, str]:
        return [annotations for name, annotations in self.writes if name == node][-1]


def make_agent(
    source: SimulatedSource, clock: FakeClock
) -> tuple[Agent, RecordingWriter, AgentMetrics]:
    writer = RecordingWriter()
    metrics = AgentMetrics(thresholds=HealthThresholds())
    policy = PublishPolicy(heartbeat_s=30.0, heartbeat_jitter_ratio=0.0)
    agent = Agent(source=source, writer=writer, metrics=metrics, policy=policy, clock=clock)
    return agent, writer, metrics


def two_nodes() -> SimulatedSource:
    return SimulatedSource(
        nodes=(simulated_node(A, gpu_count=8), simulated_node(B, gpu_count=8)),
        seed=1,
        started_at=T0,
    )


def test_first_tick_writes_every_node_then_only_heartbeats() -> None:
    clock = FakeClock()
    agent, writer, _ = make_agent(two_nodes(), clock)
    assert agent.tick().writes == 2
    for _ in range(29):
        clock.now += 1.0
        assert agent.tick().writes == 0
    clock.now += 1.0
    assert agent.tick().writes == 2
    published = parse_node_telemetry(writer.last_for(A))
    assert published is not None and published.timestamp == clock.now


def test_xid_fault_is_published_in_the_same_tick() -> None:
    clock = FakeClock()
    source = two_nodes()
    agent, writer, metrics = make_agent(source, clock)
    agent.tick()
    source.add_fault(Fault(at_s=0, node=B, gpu=3, kind=FaultKind.XID, xid=79))
    clock.now += 1.0
    report = agent.tick()
    assert (report.writes, writer.writes[-1][0]) == (1, B)
    published = parse_node_telemetry(writer.last_for(B))
    assert published is not None
    gpu = published.gpu(3)
    assert gpu is not None and gpu.xid_history == (79,)
    assert (
        metrics.registry.get_sample_value(
            "gpupool_agent_api_writes_total", {"kind": "urgent", "result": "ok"}
        )
        == 3.0
    )


def test_failed_write_is_retried_next_tick() -> None:
    clock = FakeClock()
    agent, writer, _ = make_agent(two_nodes(), clock)
    writer.fail_with = ApiError(0, "ConnectionRefused", "no API server")
    assert agent.tick().failed_writes == 2
    writer.fail_with = None
    clock.now += 1.0
    assert agent.tick().writes == 2


def test_vanished_node_is_forgotten() -> None:
    clock = FakeClock()
    source = two_nodes()
    agent, _, metrics = make_agent(source, clock)
    agent.tick()
    source.set_nodes((simulated_node(A, gpu_count=8),))
    clock.now += 1.0
    agent.tick()
    nodes_with_series = {
        sample.labels.get("node")
        for family in metrics.registry.collect()
        for sample in family.samples
        if family.name.startswith("gpupool_gpu_")
    }
    assert nodes_with_series == {A}


def test_run_loop_stops_when_told() -> None:
    clock = FakeClock()
    agent, writer, _ = make_agent(two_nodes(), clock)
    stop = threading.Event()
    ticks: list[float] = []

    def before_tick(now: float) -> None:
        ticks.append(now)
        clock.now += 1.0
        if len(ticks) == 3:
            stop.set()

    run_loop(agent=agent, interval_s=0.0, clock=clock, stop=stop, before_tick=before_tick)
    assert ticks == [T0, T0 + 1, T0 + 2]
    assert len(writer.writes) == 2  # first report of both nodes, then quiet


class FakeCluster:
    def __init__(self) -> None:
        self.nodes: list[Manifest] = [
            {
                "metadata": {"name": A, "labels": {"type": "kwok"}},
                "status": {"capacity": {"nvidia.com/gpu": "8"}},
            }
        ]
        self.pods: list[Manifest] = [
            {
                "metadata": {
                    "labels": {"gpupool.io/role": "worker"},
                    "annotations": {"gpupool.io/gpu-indices": "0,1"},
                },
                "spec": {"nodeName": A},
                "status": {"phase": "Running"},
            }
        ]
        self.selectors: list[str] = []

    def list_nodes(self, *, label_selector: str) -> list[Manifest]:
        self.selectors.append(label_selector)
        return self.nodes

    def list_running_pods(self, *, label_selector: str) -> list[Manifest]:
        self.selectors.append(label_selector)
        return self.pods


def test_simulated_inputs_follow_cluster_and_fault_file(tmp_path: Path) -> None:
    cluster = FakeCluster()
    faults = tmp_path / "faults.json"
    source = SimulatedSource(nodes=(), seed=0, started_at=T0)
    inputs = SimulatedInputs(
        source=source,
        cluster=cluster,
        settings=SimulatedInputSettings(faults_path=faults, pods_refresh_s=5.0),
    )
    inputs.refresh(now=T0)
    (report,) = source.read(now=T0)
    assert report.node == A
    assert [g.memory_used_mib for g in report.gpus[:3]] == [73728, 73728, 0]
    assert cluster.selectors == ["type=kwok", "gpupool.io/role"]

    faults.write_text(dump_fault_script([Fault(at_s=0, node=A, gpu=2, kind=FaultKind.LOST)]))
    inputs.refresh(now=T0 + 1)
    assert source.read(now=T0 + 1)[0].gpus[2].lost is True
    assert cluster.selectors == ["type=kwok", "gpupool.io/role"]  # not due yet

    faults.write_text("[{broken")
    inputs.refresh(now=T0 + 6)  # keeps the previous script, lists pods again
    assert source.read(now=T0 + 6)[0].gpus[2].lost is True
    assert cluster.selectors[-1] == "gpupool.io/role"
