"""Gang shapes: validity, the shape placement depends on, and the node that is closest to
fitting one replica (for reservations)."""

from __future__ import annotations

from gpupool.scheduling.capacity import FREE, RELEASING, UNUSABLE, NodeState
from gpupool.scheduling.model import Workload, WorkloadKind

EPSILON = 1e-9

Shape = tuple[int, float, int, int, int]


def valid_shape(workload: Workload) -> bool:
    if workload.replicas < 1:
        return False
    if workload.min_replicas is not None and not 1 <= workload.min_replicas <= workload.replicas:
        return False
    share = workload.gpu_share
    if share is not None:
        return 0.0 < share.fraction <= 1.0 and share.memory_mib >= 0
    return workload.gpus_per_replica >= 1


def shape_of(workload: Workload) -> Shape:
    """What placement depends on: (GPUs per replica, share, share memory, smallest gang,
    inference)."""
    share = workload.gpu_share
    if share is None:
        return (
            workload.gpus_per_replica,
            0.0,
            0,
            workload.replicas if workload.min_replicas is None else workload.min_replicas,
            1 if workload.kind is WorkloadKind.INFERENCE else 0,
        )
    return (
        1,
        share.fraction,
        share.memory_mib,
        workload.replicas if workload.min_replicas is None else workload.min_replicas,
        1 if workload.kind is WorkloadKind.INFERENCE else 0,
    )


def too_large_for(usable: tuple[int, int], workload: Workload, minimum: float) -> bool:
    """``place_pending``'s too-large test; ``usable``: the state's (usable total, most
    usable on a node), fixed once the state is built."""
    g = workload.gpus_per_replica if workload.gpu_share is None else 1
    return minimum > usable[0] + EPSILON or g > usable[1]


def closest_to_fitting(ns: NodeState, g: int) -> tuple[tuple[int, int], list[int]] | None:
    """The node's free and releasing slots in the NVLink domain (or the whole node, for a
    replica wider than any domain) that could hold ``g`` GPUs and has most room now:
    ((room, -node index), slots); ``None`` when no such domain has room."""
    if not ns.schedulable:
        return None
    spans = g > ns.max_domain_size
    best: tuple[tuple[int, int], list[int]] | None = None
    for d in [-1] if spans else range(len(ns.domain_size)):
        slots = [
            slot
            for slot, slot_state in enumerate(ns.status)
            if slot_state != UNUSABLE and (spans or ns.domain[slot] == d)
        ]
        if len(slots) < g:
            continue
        room = [slot for slot in slots if ns.status[slot] in (FREE, RELEASING)]
        key = (len(room), -ns.idx)
        if room and (best is None or key > best[0]):
            best = (key, room)
    return best
