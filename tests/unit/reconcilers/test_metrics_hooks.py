"""The reconcilers' metric hooks: failed cycles counted, pool gauges dropped when a replica
stops scheduling a pool (loop stopped, lease lost)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from gpupool.loop.cycle import PoolScheduler
from gpupool.reconcilers import background, pools
from gpupool.reconcilers.runtime import OperatorRuntime, Wakeups
from tests.unit.reconcilers.test_handlers import runtime


def value(rt: OperatorRuntime, name: str, **labels: str) -> float | None:
    return rt.metrics.registry.get_sample_value(name, labels)


async def until(condition: Any, *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_a_failing_cycle_is_a_gpupools_reconcile_error_and_a_stopped_loop_forgets_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt, _ = runtime()
    rt.wakeups = Wakeups()
    monkeypatch.setattr(rt, "may_schedule", lambda: True)

    def broken(self: object) -> None:
        raise RuntimeError("bug in a cycle")

    monkeypatch.setattr(PoolScheduler, "run_once", broken)
    rt.metrics.set_nodes("a100", ["n0"])

    async def scenario() -> None:
        task = asyncio.create_task(pools.run_pool_loop(rt, "a100"))
        await until(lambda: value(rt, "gpupool_reconcile_errors_total", resource="gpupools") == 1)
        assert not task.done()  # one bad cycle does not end the loop
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert value(rt, "gpupool_node_info", pool="a100", node="n0") is None


class FlakyElector:
    """Leads for the first step, then loses the lease."""

    def __init__(self) -> None:
        self.steps = 0
        self.holder = "someone-else"

    def step(self) -> bool:
        self.steps += 1
        return self.steps == 1

    def renew_interval_s(self) -> float:
        return 0.01


def test_losing_the_lease_drops_every_pool_gauge() -> None:
    rt, _ = runtime()
    elector = FlakyElector()
    rt.elector = elector  # type: ignore[assignment]
    rt.metrics.set_nodes("a100", ["n0"])
    rt.metrics.set_gpus("a100", {"total": 8, "healthy": 8, "allocated": 0, "idle": 8})

    async def scenario() -> None:
        task = asyncio.create_task(background.leader_loop(rt))
        await until(lambda: elector.steps >= 2 and value(rt, "gpupool_leader") == 0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert value(rt, "gpupool_node_info", pool="a100", node="n0") is None
    assert value(rt, "gpupool_gpus", pool="a100", state="total") is None
