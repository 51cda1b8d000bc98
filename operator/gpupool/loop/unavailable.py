"""Why GPUs are out of the pool, in words, for Events, job messages and pool status (pure).

The core decides with the telemetry; these functions explain its decisions with
the reasons the snapshot kept (:attr:`BuiltSnapshot.node_problems`,
:attr:`BuiltSnapshot.gpu_problems`): a node that is not Ready, cordoned or whose
agent went silent, and a GPU that failed the pool's health thresholds.
"""

from __future__ import annotations

from gpupool.scheduling.decisions import WaitCode, WaitingReason
from gpupool.scheduling.model import WorkloadUid
from gpupool.state.snapshot import BuiltSnapshot

SHOWN = 3
"""Entries a job message names before it says "and N more"."""

CAPACITY_CODES = frozenset(
    {WaitCode.NO_CAPACITY, WaitCode.NO_PLACEMENT, WaitCode.TOO_LARGE, WaitCode.OUTBID}
)
"""Waiting reasons that missing capacity explains (not credits, tenant ceilings...)."""


def problems_in_words(built: BuiltSnapshot) -> list[str]:
    """``node X: telemetry stale ...`` then ``GPU 3 on node Y unhealthy: XID 79 (...)``,
    each sorted by node (and GPU), so the text is stable from one cycle to the next."""
    lines = [f"node {node}: {why}" for node, why in sorted(built.node_problems.items())]
    lines += [
        f"GPU {index} on node {node} unhealthy: {why}"
        for (node, index), why in sorted(built.gpu_problems.items())
        if node not in built.node_problems
    ]
    return lines


def summarise(lines: list[str], *, shown: int = SHOWN) -> str:
    text = "; ".join(lines[:shown])
    if len(lines) > shown:
        text += f"; and {len(lines) - shown} more"
    return text


def waiting_note(built: BuiltSnapshot) -> str:
    """What a workload waiting for capacity is told about capacity that is out of the
    pool (``""`` when nothing is)."""
    lines = problems_in_words(built)
    return f"out of the pool: {summarise(lines)}" if lines else ""


def with_note(reason: WaitingReason, message: str, note: str) -> str:
    """``message`` plus ``note`` when missing capacity is why the workload waits."""
    if not note or reason.code not in CAPACITY_CODES:
        return message
    return f"{message}; {note}"


def eviction_cause(built: BuiltSnapshot, uid: WorkloadUid) -> str | None:
    """Why the GPUs a workload holds became unusable, e.g. ``GPU 3 on node n7 unhealthy:
    XID 79 (GPU has fallen off the bus)``; ``None`` when the snapshot does not say."""
    workload = built.snapshot.workloads.get(uid)
    if workload is None or workload.allocation is None:
        return None
    causes: list[str] = []
    for replica in workload.allocation.replicas:
        node = str(replica.node)
        for index in replica.gpu_indices:
            why = built.gpu_problems.get((node, index))
            if why is not None:
                causes.append(f"GPU {index} on node {node} unhealthy: {why}")
    return "; ".join(causes) if causes else None
