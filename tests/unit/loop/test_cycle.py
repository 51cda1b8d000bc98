"""Whole cycles: fake client, real cache, real core; the cluster's answers fed back by relist."""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gpupool.k8s.errors import ApiError
from gpupool.loop.actuator import Actuator
from gpupool.loop.cycle import PoolScheduler
from gpupool.loop.resync import resync
from gpupool.scheduling.config import PoolConfig
from gpupool.scheduling.cycle import run_cycle
from gpupool.scheduling.decisions import Decisions
from gpupool.scheduling.snapshot import Snapshot
from gpupool.state.cache import ClusterCache
from tests.unit.loop.fakes import FakeKubeClient
from tests.unit.state.bodies import T0, job, node_body, pool_body


class Clock:
    def __init__(self) -> None:
        self.now = T0 + 100

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, *, nodes: int = 2, grace: int = 30, min_runtime: int = 0) -> None:
        self.client = FakeKubeClient()
        self.cache = ClusterCache()
        self.clock = Clock()
        for index in range(nodes):
            self.client.nodes[f"n{index}"] = node_body(f"n{index}")
        self.client.add_custom(
            "gpupools",
            pool_body(
                tenants=[
                    {"namespace": "team-a", "guaranteedGPUs": 16},
                    {"namespace": "team-b", "guaranteedGPUs": 8},
                ],
                grace=grace,
                min_runtime=min_runtime,
            ),
        )
        self.scheduler = PoolScheduler(
            pool="a100",
            cache=self.cache,
            actuator=Actuator(client=self.client, cache=self.cache, executor=ThreadPoolExecutor(4)),
            clock=self.clock,
            identity="test",
        )

    def submit(self, body: dict[str, Any]) -> None:
        self.client.add_custom("trainingjobs", body)

    def cycle(self) -> None:
        resync(client=self.client, cache=self.cache, telemetry_parser=None)
        self.scheduler.run_once()
        resync(client=self.client, cache=self.cache, telemetry_parser=None)

    def job(self, name: str, namespace: str = "team-a") -> dict[str, Any]:
        return self.client.custom[("trainingjobs", namespace, name)]

    def pods(self) -> dict[str, str | None]:
        return {name: pod["spec"].get("nodeName") for (_, name), pod in self.client.pods.items()}


def test_a_two_node_gang_is_bound_at_once_and_runs() -> None:
    world = World()
    world.submit(job("bert").gpus(8).replicas(2).body())
    world.cycle()

    assert world.pods() == {"bert-0-w0": "n0", "bert-0-w1": "n1"} or world.pods() == {
        "bert-0-w0": "n1",
        "bert-0-w1": "n0",
    }
    assert world.job("bert")["status"]["phase"] == "Scheduled"
    assert ("team-a", "bert-workers") in world.client.services

    for name in world.pods():
        world.client.set_pod_phase(name, "Running")
    world.cycle()
    assert world.job("bert")["status"]["phase"] == "Running"


def test_a_gang_too_big_for_the_pool_waits_with_a_reason() -> None:
    world = World()
    world.submit(job("huge").gpus(8).replicas(3).body())
    world.cycle()
    status = world.job("huge")["status"]
    assert world.pods() == {}
    assert status["phase"] == "Queued"
    assert status["message"]


def test_a_failed_status_write_is_forgotten_and_retried() -> None:
    world = World()
    world.submit(job("bert").gpus(8).replicas(1).body())
    world.client.fail["patch_status"] = ApiError(500, "InternalError", "etcd hiccup")
    world.cycle()
    assert world.pods() == {}
    world.cycle()
    assert list(world.pods()) == ["bert-0-w0"]


def test_high_tier_preempts_low_gracefully_and_the_victim_resumes_later() -> None:
    world = World(nodes=1, grace=30)
    world.submit(job("low").gpus(8).priority("low").in_namespace("team-b").body())
    world.cycle()
    world.client.set_pod_phase("low-0-w0", "Running")
    world.cycle()
    assert world.job("low", "team-b")["status"]["phase"] == "Running"

    world.clock.now += 600
    world.submit(job("high").gpus(8).priority("high").body())
    world.cycle()

    low = world.job("low", "team-b")["status"]
    assert low["phase"] in ("Preempting", "Queued")
    assert low["preemptions"] == 1
    assert "delete_pod low-0-w0 grace=30" in world.client.calls
    world.cycle()
    assert "high-0-w0" in world.pods()

    world.client.set_pod_phase("high-0-w0", "Succeeded", exit_code=0)
    world.cycle()
    world.cycle()
    assert world.job("high")["status"]["phase"] == "Succeeded"
    assert "low-1-w0" in world.pods()  # resumed: attempt 1 (GPUPOOL_RESTART_COUNT=1)


def test_a_namespace_that_is_not_a_tenant_gets_a_condition_and_one_event() -> None:
    world = World()
    world.submit(job("stray").in_namespace("team-z").body())
    world.cycle()
    world.cycle()
    status = world.job("stray", "team-z")["status"]
    admitted = next(c for c in status["conditions"] if c["type"] == "Admitted")
    assert admitted["status"] == "False" and admitted["reason"] == "NotATenant"
    assert [e["reason"] for e in world.client.events] == ["NotATenant"]
    assert world.pods() == {}


def test_pool_status_reports_capacity_allocation_and_tenants() -> None:
    world = World()
    world.submit(job("bert").gpus(4).body())
    world.cycle()
    status = world.client.custom[("gpupools", "", "a100")]["status"]
    assert status["nodes"] == 2
    assert status["gpus"] == {"total": 16, "healthy": 16, "allocated": 4, "idle": 12}
    tenants = {t["namespace"]: t for t in status["tenants"]}
    assert tenants["team-a"]["allocatedGPUs"] == 4


def test_the_core_decides_with_the_cyclic_collector_paused() -> None:
    world = World()
    seen: list[bool] = []

    def decide(snapshot: Snapshot, config: PoolConfig) -> Decisions:
        seen.append(gc.isenabled())
        return run_cycle(snapshot, config)

    world.scheduler = PoolScheduler(
        pool="a100",
        cache=world.cache,
        actuator=Actuator(client=world.client, cache=world.cache, executor=ThreadPoolExecutor(4)),
        clock=world.clock,
        identity="test",
        decide=decide,
    )
    world.submit(job("bert").gpus(8).replicas(1).body())
    assert gc.isenabled()
    world.cycle()
    assert seen == [False]
    assert gc.isenabled()
    assert list(world.pods()) == ["bert-0-w0"]
