"""How fast is this host? A fixed interpreter workload, timed where the benchmarks run.

Why. Wall times of a replay or a cycle depend on the host as much as on the code: the
same commit replayed philly-dev in 103 s on one day's machine and in 40 s on the next
(same machine kind, same interpreter, same decisions). A figure is comparable across
sessions only next to a measure of the host taken in the same run. This workload does
what the scheduling core does most (builds tuples, reads and writes dicts, float
arithmetic, small function calls, a keyed sort) and never changes, so that
``wall time / reference`` compares code, not hosts; :data:`CHECKSUM` pins it (a test
fails if the workload is edited, which would break comparisons with earlier figures).
"""

from __future__ import annotations

import time

ROUNDS = 500_000
"""Iterations of the loop: 0.08 s on the 2-core machine of 2026-11-23 that replayed
philly-dev in 40 s."""

CHECKSUM = 736_415
"""What :func:`workload` returns: the work done is the same on every host."""


def _step(value: float, i: int) -> float:
    return value * 0.5 + (i % 17) / 16.0


def workload(rounds: int = ROUNDS) -> int:
    """The reference work; returns a checksum of what it computed."""
    table: dict[int, tuple[int, float]] = {}
    total = 0.0
    for i in range(rounds):
        key = (i * 7919) % 10_007
        previous = table.get(key)
        value = (i, (previous[1] if previous is not None else 0.0) * 0.5 + i / (key + 1))
        table[key] = value
        total += _step(value[1], i)
    ordered = sorted(table.items(), key=lambda item: (-item[1][1], item[0]))
    return sum(key for key, _ in ordered[:100]) + int(total) % 1_000_003


def reference_seconds(repeats: int = 5) -> float:
    """The fastest of ``repeats`` timed runs of :func:`workload`, in seconds (the
    fastest, as the least disturbed by anything else running)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        checksum = workload()
        elapsed = time.perf_counter() - started
        if checksum != CHECKSUM:
            raise RuntimeError(f"host reference computed {checksum}, expected {CHECKSUM}")
        best = min(best, elapsed)
    return best
