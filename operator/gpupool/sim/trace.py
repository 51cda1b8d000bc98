"""Jobs CSV reader (format: ``shared/traces/README.md``).

Columns: ``job_id, submit_s, duration_s, gpus, tenant, priority, kind`` (any order,
header required, extra columns ignored). Rows must be sorted by ``submit_s``; an
unsorted file is sorted (stable) rather than rejected.

Bad rows raise :class:`TraceError` naming the line (``strict=True``, the default),
or are skipped and counted in :attr:`Trace.skipped` (``strict=False``). Jobs that
can never fit the simulated pool are not a property of the file, so the
simulator skips and counts them separately (see :func:`split_placeable`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gpupool.scheduling.model import Tier, WorkloadKind

REQUIRED_COLUMNS = ("job_id", "submit_s", "duration_s", "gpus", "tenant", "priority", "kind")


class TraceError(ValueError):
    """A malformed trace file or row; the message names the file and line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceJob:
    job_id: str
    submit_s: float
    duration_s: float
    """Run time at the full GPU count."""
    gpus: float
    """Whole GPUs (>= 1), or a fraction of one GPU (< 1, inference only)."""
    tenant: str
    tier: Tier
    kind: WorkloadKind
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    path: str
    jobs: tuple[TraceJob, ...]
    skipped: int = 0
    """Malformed rows skipped (``strict=False``)."""
    skipped_examples: tuple[str, ...] = field(default=())


def read_trace(path: str | Path, *, strict: bool = True, limit: int | None = None) -> Trace:
    """Read and validate a jobs CSV; ``limit`` keeps only the first ``limit`` jobs."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise TraceError(f"{path}: cannot open ({error.strerror or error})") from None
    with handle:
        return parse_trace(handle, name=str(path), strict=strict, limit=limit)


def parse_trace(
    lines: Iterable[str], *, name: str = "<trace>", strict: bool = True, limit: int | None = None
) -> Trace:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise TraceError(f"{name}: empty file (expected a header row)") from None
    except csv.Error as error:
        raise TraceError(f"{name}:1: {error}") from None
    columns = [column.strip() for column in header]
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise TraceError(
            f"{name}:1: header lacks column(s) {', '.join(missing)} "
            f"(expected {','.join(REQUIRED_COLUMNS)})"
        )
    position = {column: columns.index(column) for column in REQUIRED_COLUMNS}
    jobs: list[TraceJob] = []
    skipped = 0
    examples: list[str] = []
    seen: set[str] = set()
    for line, row in _rows(reader, name):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            job = _parse_row(row, position, len(columns), line)
            if job.job_id in seen:
                raise ValueError(f"duplicate job_id {job.job_id!r}")
        except ValueError as error:
            message = f"{name}:{line}: {error}"
            if strict:
                raise TraceError(message) from None
            skipped += 1
            if len(examples) < 5:
                examples.append(message)
            continue
        seen.add(job.job_id)
        jobs.append(job)
        if limit is not None and len(jobs) >= limit:
            break
    jobs.sort(key=lambda job: job.submit_s)
    return Trace(path=name, jobs=tuple(jobs), skipped=skipped, skipped_examples=tuple(examples))


def _rows(reader: Iterator[list[str]], name: str) -> Iterator[tuple[int, list[str]]]:
    line = 1
    while True:
        line += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise TraceError(f"{name}:{line}: {error}") from None
        yield line, row


def _parse_row(row: list[str], position: dict[str, int], width: int, line: int) -> TraceJob:
    if len(row) < width:
        raise ValueError(f"expected {width} columns, found {len(row)}")

    def cell(column: str) -> str:
        return row[position[column]].strip()

    job_id = cell("job_id")
    if not job_id:
        raise ValueError("empty job_id")
    submit = _number(cell("submit_s"), "submit_s")
    duration = _number(cell("duration_s"), "duration_s")
    gpus = _number(cell("gpus"), "gpus")
    if submit < 0:
        raise ValueError(f"submit_s must be >= 0, got {cell('submit_s')!r}")
    if duration <= 0:
        raise ValueError(f"duration_s must be > 0, got {cell('duration_s')!r}")
    try:
        tier = Tier.parse(cell("priority"))
    except ValueError as error:
        raise ValueError(str(error)) from None
    kind_text = cell("kind").lower()
    try:
        kind = WorkloadKind(kind_text)
    except ValueError:
        raise ValueError(f"kind must be training or inference, got {cell('kind')!r}") from None
    if gpus <= 0:
        raise ValueError(f"gpus must be positive, got {cell('gpus')!r}")
    if gpus < 1 and kind is not WorkloadKind.INFERENCE:
        raise ValueError(f"a fractional GPU ({cell('gpus')}) is only allowed for inference")
    if gpus > 1 and gpus != int(gpus):
        raise ValueError(f"gpus above 1 must be whole, got {cell('gpus')!r}")
    tenant = cell("tenant")
    if not tenant:
        raise ValueError("empty tenant")
    return TraceJob(
        job_id=job_id,
        submit_s=submit,
        duration_s=duration,
        gpus=gpus,
        tenant=tenant,
        tier=tier,
        kind=kind,
        line=line,
    )


def _number(text: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} must be finite, got {text!r}")
    return value


def gang_shape(gpus: float, gpus_per_node: int) -> tuple[int, int]:
    """``(replicas, gpus_per_replica)`` for a whole-GPU job on nodes of ``gpus_per_node``.

    One replica when it fits a node; otherwise the fewest equal replicas that each
    fit a node (12 GPUs on 8-GPU nodes: 2 x 6).
    """
    total = int(gpus)
    if total <= gpus_per_node:
        return 1, total
    replicas = math.ceil(total / gpus_per_node)
    while total % replicas:
        replicas += 1
    return replicas, total // replicas


def split_placeable(
    jobs: Iterable[TraceJob], *, nodes: int, gpus_per_node: int
) -> tuple[list[TraceJob], list[TraceJob]]:
    """``(jobs the pool can ever run, jobs larger than the pool)``."""
    capacity = nodes * gpus_per_node
    fits: list[TraceJob] = []
    too_large: list[TraceJob] = []
    for job in jobs:
        (fits if job.gpus <= capacity else too_large).append(job)
    return fits, too_large
