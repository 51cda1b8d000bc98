"""Background tasks of every replica: first sync, the lease, housekeeping.

- sync: a full relist before anyone may schedule (and every ``resync_interval_s``);
- leader: acquire / renew the Lease; on becoming leader wake every pool loop;
- housekeeping (leader only): conditions for workloads whose GPUPool does not exist;
- pool loops: one scheduling loop per GPUPool (see :mod:`gpupool.reconcilers.pools`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf

from gpupool.k8s.errors import ApiError
from gpupool.loop.orphans import orphan_changes
from gpupool.loop.resync import resync
from gpupool.reconcilers.pools import supervise_pool_loops
from gpupool.reconcilers.runtime import HOUSEKEEPING, OperatorRuntime
from gpupool.state.records import JobRecord, ServiceRecord

logger = logging.getLogger(__name__)
TASKS_KEY = "gpupool_tasks"


async def sync_once(runtime: OperatorRuntime) -> None:
    """Relist until it works (the API may still be starting)."""
    delay = 0.5
    while True:
        try:
            await asyncio.to_thread(
                resync,
                client=runtime.client,
                cache=runtime.cache,
                telemetry_parser=runtime.telemetry_parser,
            )
        except ApiError as error:
            logger.warning("initial relist failed (%s); retrying in %.1fs", error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            continue
        runtime.synced.set()
        runtime.wakeups.poke_all()
        return


async def leader_loop(runtime: OperatorRuntime) -> None:
    elector = runtime.elector
    leading = False
    while True:
        now_leading = await asyncio.to_thread(elector.step)
        runtime.metrics.leader.set(1 if now_leading else 0)
        if now_leading and not leading:
            runtime.wakeups.poke_all()
        if leading and not now_leading:
            logger.warning("lost the scheduling lease to %s", elector.holder)
            runtime.metrics.forget_pools()  # the new leader reports the pools now
        leading = now_leading
        await asyncio.sleep(elector.renew_interval_s())


async def housekeeping_loop(runtime: OperatorRuntime) -> None:
    last_resync = time.monotonic()
    while True:
        await runtime.wakeups.wait(HOUSEKEEPING, timeout=runtime.housekeeping_interval_s)
        if runtime.may_schedule():
            cache = runtime.cache
            workloads: list[JobRecord | ServiceRecord] = [*cache.jobs(), *cache.services()]
            changes = orphan_changes(
                [w for w in workloads if runtime.answers_for(w.pool, w.namespace)],
                pool_exists=cache.pool_exists,
                now=runtime.clock(),
                reporting_instance=runtime.identity,
            )
            if changes:
                await asyncio.to_thread(runtime.actuator.apply, changes)
        if time.monotonic() - last_resync >= runtime.resync_interval_s:
            last_resync = time.monotonic()
            try:
                await asyncio.to_thread(
                    resync,
                    client=runtime.client,
                    cache=runtime.cache,
                    telemetry_parser=runtime.telemetry_parser,
                )
            except ApiError as error:
                logger.warning("periodic relist failed: %s", error)


async def _guarded(name: str, coroutine: Any) -> None:
    try:
        await coroutine
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("background task %s crashed", name)
        raise


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.startup(registry=registry)
    async def start_background(memo: Any, settings: kopf.OperatorSettings, **_: Any) -> None:
        runtime: OperatorRuntime = memo.runtime
        settings.posting.enabled = False  # our own Events say what matters
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330

        async def after_sync() -> None:
            await sync_once(runtime)
            await asyncio.gather(
                _guarded("leader", leader_loop(runtime)),
                _guarded("housekeeping", housekeeping_loop(runtime)),
                _guarded("pool loops", supervise_pool_loops(runtime)),
            )

        memo[TASKS_KEY] = [asyncio.create_task(after_sync(), name="gpupool-background")]

    @kopf.on.cleanup(registry=registry)
    async def stop_background(memo: Mapping[str, Any], **_: Any) -> None:
        runtime: OperatorRuntime = memo["runtime"]
        for task in memo.get(TASKS_KEY, []):
            task.cancel()
        for task in memo.get(TASKS_KEY, []):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.to_thread(runtime.elector.release)
        runtime.close()
