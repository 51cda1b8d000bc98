"""GPUPool: feed the cache; one scheduling loop (an asyncio task) per pool.

The loops are supervised here rather than run as kopf daemons: a kopf daemon
needs a finalizer on the GPUPool, and a pool deleted while no operator runs
would then hang in Terminating forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from gpupool.k8s import names
from gpupool.loop.cycle import PoolScheduler
from gpupool.reconcilers.runtime import HOUSEKEEPING, SUPERVISOR, OperatorRuntime
from gpupool.state.parse import parse_pool
from gpupool.state.records import PoolRecord

logger = logging.getLogger(__name__)
DEFAULT_INTERVAL_S = 5.0


def on_pool_event(
    runtime: OperatorRuntime, event_type: str | None, body: Mapping[str, Any]
) -> None:
    name = str((body.get("metadata") or {}).get("name", ""))
    before = runtime.cache.pool(name)
    if event_type == "DELETED":
        runtime.cache.remove_pool(name)
    else:
        parsed = parse_pool(body)
        if isinstance(parsed, PoolRecord):
            runtime.cache.upsert_pool(parsed)
        else:
            logger.warning("GPUPool %s has an unusable spec: %s", name, parsed)
            runtime.cache.set_pool_error(name, parsed)
    after = runtime.cache.pool(name)
    spec_changed = before is None or after is None or before.generation != after.generation
    if spec_changed:
        runtime.wakeups.poke(name)
        runtime.wakeups.poke(HOUSEKEEPING)
        runtime.wakeups.poke(SUPERVISOR)


async def run_pool_loop(runtime: OperatorRuntime, name: str) -> None:
    """Cycle every ``auction.intervalSeconds`` or sooner on change, while leading."""
    scheduler = PoolScheduler(
        pool=name,
        cache=runtime.cache,
        actuator=runtime.actuator,
        clock=runtime.clock,
        identity=runtime.identity,
        settings=runtime.snapshot_settings,
        metrics=runtime.metrics,
    )
    logger.info("scheduling loop for GPUPool %s started", name)
    try:
        while True:
            if runtime.may_schedule():
                try:
                    await asyncio.to_thread(scheduler.run_once)
                except Exception:  # one bad cycle must not end the pool's loop
                    runtime.metrics.reconcile_errors.labels(resource=names.POOL_PLURAL).inc()
                    logger.exception("scheduling cycle of GPUPool %s failed", name)
            pool = runtime.cache.pool(name)
            interval = (
                float(pool.spec.auction.interval_seconds)
                if pool is not None
                else DEFAULT_INTERVAL_S
            )
            await runtime.wakeups.wait(name, timeout=interval)
            await asyncio.sleep(runtime.min_cycle_gap_s)
    finally:
        runtime.wakeups.forget(name)
        runtime.metrics.forget_pool(name)
        logger.info("scheduling loop for GPUPool %s stopped", name)


async def supervise_pool_loops(runtime: OperatorRuntime) -> None:
    """One loop per GPUPool this replica serves: started when it appears, cancelled when
    it goes."""
    loops: dict[str, asyncio.Task[None]] = {}
    try:
        while True:
            wanted = {name for name in runtime.cache.pool_names() if runtime.serves(name)}
            for name in sorted(wanted - loops.keys()):
                loops[name] = asyncio.create_task(
                    run_pool_loop(runtime, name), name=f"gpupool-loop-{name}"
                )
            for name in sorted(loops.keys() - wanted):
                loops.pop(name).cancel()
            for name, task in list(loops.items()):
                if task.done():  # crashed: restarted on the next pass
                    del loops[name]
            await runtime.wakeups.wait(SUPERVISOR, timeout=1.0)
    finally:
        for task in loops.values():
            task.cancel()
        await asyncio.gather(*loops.values(), return_exceptions=True)


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.event(names.GROUP, names.VERSION, names.POOL_PLURAL, registry=registry)
    def pool_event(event: Mapping[str, Any], body: Mapping[str, Any], memo: Any, **_: Any) -> None:
        with memo.runtime.metrics.counting_errors(names.POOL_PLURAL):
            on_pool_event(memo.runtime, event.get("type"), body)
