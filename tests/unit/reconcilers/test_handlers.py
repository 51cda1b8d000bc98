"""Watch events -> cache and wakeups: status-only changes must not wake a pool loop."""

from __future__ import annotations

import asyncio

from gpupool.loop.leader import LeaderElector
from gpupool.metrics import OperatorMetrics
from gpupool.reconcilers.cluster import on_node_event, on_pod_event
from gpupool.reconcilers.pools import on_pool_event
from gpupool.reconcilers.runtime import OperatorRuntime, Wakeups
from gpupool.reconcilers.workloads import on_job_event
from gpupool.state.cache import ClusterCache
from tests.unit.loop.fakes import FakeKubeClient
from tests.unit.state.bodies import job, node_body, pod_body, pool_body


class RecordingWakeups:
    def __init__(self) -> None:
        self.poked: list[str] = []

    def poke(self, key: str) -> None:
        self.poked.append(key)

    def poke_all(self) -> None:
        self.poked.append("*")


def runtime() -> tuple[OperatorRuntime, RecordingWakeups]:
    client = FakeKubeClient()
    built = OperatorRuntime(
        client=client,
        cache=ClusterCache(),
        elector=LeaderElector(client=client, name="l", namespace="ns", identity="me"),
        metrics=OperatorMetrics(),
        identity="me",
        clock=lambda: 0.0,
        telemetry_parser=None,
    )
    wakeups = RecordingWakeups()
    built.wakeups = wakeups  # type: ignore[assignment]
    return built, wakeups


def test_a_new_job_wakes_its_pool_but_a_status_update_does_not() -> None:
    rt, wakeups = runtime()
    on_job_event(rt, "ADDED", job("bert").version(1).body())
    assert "a100" in wakeups.poked
    wakeups.poked.clear()
    on_job_event(rt, "MODIFIED", job("bert").with_status(phase="Queued").version(2).body())
    assert wakeups.poked == []
    found = rt.cache.job("uid-bert")
    assert found is not None and found.status.phase == "Queued"
    on_job_event(rt, "DELETED", job("bert").version(3).body())
    assert rt.cache.job("uid-bert") is None
    assert wakeups.poked == ["a100"]


def test_pool_spec_changes_wake_the_pool_status_writes_do_not() -> None:
    rt, wakeups = runtime()
    on_pool_event(rt, "ADDED", pool_body())
    assert "a100" in wakeups.poked
    wakeups.poked.clear()
    on_pool_event(rt, "MODIFIED", pool_body(status={"nodes": 3}))
    assert wakeups.poked == []


def test_pod_phase_changes_wake_the_owner_pool() -> None:
    rt, wakeups = runtime()
    on_job_event(rt, "ADDED", job("bert").body())
    wakeups.poked.clear()
    on_pod_event(rt, "ADDED", pod_body("bert-0-w0", owner="bert", phase="Pending"))
    on_pod_event(
        rt, "MODIFIED", pod_body("bert-0-w0", owner="bert", phase="Pending", resource_version=2)
    )
    on_pod_event(
        rt, "MODIFIED", pod_body("bert-0-w0", owner="bert", phase="Running", resource_version=3)
    )
    assert wakeups.poked == ["a100", "a100"]


def test_telemetry_heartbeats_do_not_wake_anyone_but_readiness_does() -> None:
    rt, wakeups = runtime()
    on_node_event(rt, "ADDED", node_body("n1"))
    wakeups.poked.clear()
    on_node_event(rt, "MODIFIED", node_body("n1", annotations={"unrelated": "x"}))
    assert wakeups.poked == []
    on_node_event(rt, "MODIFIED", node_body("n1", ready=False))
    assert wakeups.poked == ["*"]


def test_wakeups_deliver_a_poke_made_while_nobody_waited() -> None:
    async def scenario() -> tuple[bool, bool]:
        wakeups = Wakeups()
        wakeups.poke("a100")
        first = await wakeups.wait("a100", timeout=1.0)
        second = await wakeups.wait("a100", timeout=0.05)
        return first, second

    assert asyncio.run(scenario()) == (True, False)
