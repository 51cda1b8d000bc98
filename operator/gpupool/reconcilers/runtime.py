"""What every handler shares: the cache, the API door, the actuator, the lease, the clock.

Handed to kopf as the operator's ``memo`` (``memo.runtime``); built by
:func:`gpupool.cli` (or a test) with whatever client and clock it wants.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gpupool.k8s.client import KubeClient
from gpupool.loop.actuator import Actuator
from gpupool.loop.leader import LeaderElector
from gpupool.metrics import OperatorMetrics
from gpupool.state.cache import ClusterCache
from gpupool.state.parse import TelemetryParser
from gpupool.state.snapshot import SnapshotSettings

HOUSEKEEPING = ""
"""Wakeup key of the housekeeping loop (unknown pools, relists)."""
SUPERVISOR = "/supervisor"
"""Wakeup key of the task that starts and stops the per-pool loops (no pool has a '/')."""


class Wakeups:
    """Per-pool "something changed" signals; the pool loops wait on them with a timeout.

    Created and used on the event loop only (handlers and daemons run there).
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def _event(self, key: str) -> asyncio.Event:
        found = self._events.get(key)
        if found is None:
            found = self._events[key] = asyncio.Event()
        return found

    def poke(self, key: str) -> None:
        self._event(key).set()

    def poke_all(self) -> None:
        for found in self._events.values():
            found.set()

    async def wait(self, key: str, *, timeout: float) -> bool:
        """Wait for a poke (True) or the timeout (False); the signal is consumed."""
        found = self._event(key)
        try:
            await asyncio.wait_for(found.wait(), timeout=timeout)
        except TimeoutError:
            return False
        finally:
            found.clear()
        return True

    def forget(self, key: str) -> None:
        self._events.pop(key, None)


@dataclass(kw_only=True)
class OperatorRuntime:
    client: KubeClient
    cache: ClusterCache
    elector: LeaderElector
    metrics: OperatorMetrics
    identity: str
    clock: Callable[[], float]
    telemetry_parser: TelemetryParser | None
    snapshot_settings: SnapshotSettings = field(default_factory=SnapshotSettings)
    write_threads: int = 16
    min_cycle_gap_s: float = 0.2
    """Pokes arriving within this gap are served by one cycle (bursts of events)."""
    housekeeping_interval_s: float = 2.0
    resync_interval_s: float = 300.0
    pools: frozenset[str] | None = None
    """Schedule only these GPUPools (``None``: all); lets operators shard pools."""
    wakeups: Wakeups = field(default_factory=Wakeups)
    synced: threading.Event = field(default_factory=threading.Event)
    """Set once the first full relist is in the cache: nobody schedules before that."""
    executor: ThreadPoolExecutor = field(init=False)
    event_executor: ThreadPoolExecutor = field(init=False)
    actuator: Actuator = field(init=False)

    def __post_init__(self) -> None:
        self.executor = ThreadPoolExecutor(
            max_workers=self.write_threads, thread_name_prefix="gpupool-write"
        )
        self.event_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gpupool-event")
        self.actuator = Actuator(
            client=self.client,
            cache=self.cache,
            executor=self.executor,
            metrics=self.metrics,
            event_executor=self.event_executor,
        )

    def serves(self, pool: str | None) -> bool:
        return pool is not None and (self.pools is None or pool in self.pools)

    def answers_for(self, pool: str | None, namespace: str) -> bool:
        """Whether this replica explains problems of a workload (its pool, or, for a pool
        nobody serves, a namespace that is a tenant of a pool this replica serves)."""
        if self.pools is None or self.serves(pool):
            return True
        for name in self.pools:
            record = self.cache.pool(name)
            if record is not None and any(t.namespace == namespace for t in record.spec.tenants):
                return True
        return False

    def may_schedule(self) -> bool:
        return self.synced.is_set() and self.elector.is_leader

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.event_executor.shutdown(wait=True, cancel_futures=False)
