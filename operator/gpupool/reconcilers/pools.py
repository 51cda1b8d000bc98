"""GPUPool: feed the cache; one scheduling loop (a kopf daemon) per pool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from gpupool.k8s import names
from gpupool.loop.cycle import PoolScheduler
from gpupool.reconcilers.runtime import HOUSEKEEPING, OperatorRuntime
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


async def run_pool_loop(runtime: OperatorRuntime, name: str, stopped: kopf.DaemonStopped) -> None:
    """Cycle every ``auction.intervalSeconds`` or sooner on change, while leading."""
    if not runtime.serves(name):
        await stopped.wait()
        return
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
        while not stopped:
            if runtime.may_schedule():
                try:
                    await asyncio.to_thread(scheduler.run_once)
                except Exception:  # one bad cycle must not end the pool's loop
                    logger.exception("scheduling cycle of GPUPool %s failed", name)
            pool = runtime.cache.pool(name)
            interval = (
                float(pool.spec.auction.interval_seconds)
                if pool is not None
                else DEFAULT_INTERVAL_S
            )
            await runtime.wakeups.wait(name, timeout=interval)
            await stopped.wait(runtime.min_cycle_gap_s)
    finally:
        runtime.wakeups.forget(name)
        logger.info("scheduling loop for GPUPool %s stopped", name)


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.event(names.GROUP, names.VERSION, names.POOL_PLURAL, registry=registry)
    def pool_event(event: Mapping[str, Any], body: Mapping[str, Any], memo: Any, **_: Any) -> None:
        on_pool_event(memo.runtime, event.get("type"), body)

    @kopf.daemon(
        names.GROUP,
        names.VERSION,
        names.POOL_PLURAL,
        registry=registry,
        cancellation_timeout=10.0,
    )
    async def pool_scheduler(name: str, stopped: kopf.DaemonStopped, memo: Any, **_: Any) -> None:
        await run_pool_loop(memo.runtime, name, stopped)
