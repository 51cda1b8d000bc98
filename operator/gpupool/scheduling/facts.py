"""What a cycle derives from one :class:`Workload` alone, memoised across cycles.

A cycle looks at every workload of the pool (50,000 in a large one) and needs the
same few derived numbers for each: its tier as an ``int``, GPUs per replica, the
smallest gang, whether its shape is valid, the GPUs it holds. Workloads are
immutable and the operator and the simulator hand the unchanged ones to the next
cycle, so :func:`facts_of` keeps these per workload object, the way
:func:`~gpupool.scheduling.capacity.node_layout` does for nodes. It is the cache of
a pure function of the workload (a hit and a miss give equal facts), bounded in
size, and it holds the workloads it knows so their ``id`` cannot be reused while
cached.
"""

from __future__ import annotations

from gpupool.scheduling.model import Workload, WorkloadKind


class WorkloadFacts:
    """Derived, read-only facts of one workload (never mutated once built).

    The numbers keep the types the cycle has always computed (``int`` for whole
    GPUs, ``float`` for shares): they end up in decisions and reasons.
    """

    __slots__ = (
        "bid_gpus",
        "g",
        "guarantee_key",
        "held_gpus",
        "minimum",
        "neg_tier",
        "per_replica",
        "requested",
        "shape",
        "slot_count",
        "smallest",
        "tier",
        "valid",
    )

    def __init__(self, workload: Workload) -> None:
        share = workload.gpu_share
        tier = int(workload.tier)
        per_replica: float = workload.gpus_per_replica if share is None else share.fraction
        smallest = workload.replicas if workload.min_replicas is None else workload.min_replicas
        self.tier = tier
        self.neg_tier = -tier
        self.per_replica = per_replica
        """GPUs per replica: ``gpus_per_replica`` (an int), or the share's fraction."""
        self.smallest = smallest
        """Replicas of the smallest gang it may run with."""
        self.minimum = smallest * per_replica
        """GPUs of its smallest allowed gang."""
        self.bid_gpus = workload.replicas * per_replica
        """GPUs at the full replica count (what a pending workload bids for)."""
        self.requested = workload.requested_gpus
        self.valid = valid_shape(workload)
        g = workload.gpus_per_replica if share is None else 1
        self.g = g
        """Whole GPUs one replica needs in placement (a share needs one GPU)."""
        self.shape = (
            g,
            0.0 if share is None else share.fraction,
            0 if share is None else share.memory_mib,
            smallest,
            1 if workload.kind is WorkloadKind.INFERENCE else 0,
        )
        """What placement depends on: equal shapes fit (or not) in the same places."""
        allocation = workload.allocation
        if allocation is None:
            self.held_gpus: float = 0.0
            self.slot_count = 0
            self.guarantee_key: tuple[int, float, str] = (-tier, 0.0, workload.uid)
        else:
            self.held_gpus = len(allocation.replicas) * per_replica
            """GPUs a running workload holds (a share counts as its fraction)."""
            self.slot_count = sum(len(replica.gpu_indices) for replica in allocation.replicas)
            """Whole GPUs a running workload touches (a fractional replica touches one)."""
            self.guarantee_key = (-tier, allocation.started_at, workload.uid)
            """Order of running work inside a tenant's guarantee (:mod:`.guarantees`)."""


def valid_shape(workload: Workload) -> bool:
    """Positive replicas, a smallest gang inside them, and whole GPUs or a sane share."""
    if workload.replicas < 1:
        return False
    if workload.min_replicas is not None and not 1 <= workload.min_replicas <= workload.replicas:
        return False
    share = workload.gpu_share
    if share is not None:
        return 0.0 < share.fraction <= 1.0 and share.memory_mib >= 0
    return workload.gpus_per_replica >= 1


_FACTS: dict[int, tuple[Workload, WorkloadFacts]] = {}
_FACTS_MAX = 250_000
_FACTS_SLACK = 1_000


def facts_of(workload: Workload) -> WorkloadFacts:
    """The facts of ``workload``, memoised per workload object."""
    hit = _FACTS.get(id(workload))
    if hit is not None and hit[0] is workload:
        return hit[1]
    return remember(workload)


def remember(workload: Workload) -> WorkloadFacts:
    """Compute and memoise the facts of ``workload`` (the miss path of :func:`facts_of`)."""
    facts = WorkloadFacts(workload)
    if len(_FACTS) >= _FACTS_MAX:
        _FACTS.clear()
    _FACTS[id(workload)] = (workload, facts)
    return facts


def facts_memo(live: int) -> dict[int, tuple[Workload, WorkloadFacts]]:
    """The memo itself, for a loop over a snapshot's ``live`` workloads that inlines
    :func:`facts_of`.

    Emptied first once it holds far more entries than ``live``: workloads replaced since
    (started, preempted, finished) leave it, so it stays about the size of the pool
    (a large memo costs more in cache misses and garbage collection than it saves).
    """
    if len(_FACTS) > 2 * live + _FACTS_SLACK:
        _FACTS.clear()
    return _FACTS
