"""Pause Python's cyclic garbage collector around a scheduling cycle (for callers).

A cycle over a large pool allocates hundreds of thousands of small objects while
the snapshot holds millions more; the cyclic collector then runs several full
passes over all of them in the middle of the cycle (about 40% of a cycle at
4,000 nodes and 50,000 workloads). Nothing a cycle builds is cyclic garbage, so
callers on the hot path (the operator loop, the simulator, the benchmark) wrap
:func:`~gpupool.scheduling.run_cycle` in :func:`paused_gc`; the collector is
restored, and runs normally, between cycles. ``run_cycle`` itself never touches
process-wide state.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector inside the block (re-entrant; restores the old state)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
