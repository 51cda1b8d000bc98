"""The immutable input of one scheduling cycle.

The operator's state cache builds one per cycle from Kubernetes objects and
node-agent telemetry; the simulator builds one from its event queue. Building a
new snapshot from the previous one is cheap: nodes, tenants and workloads are
frozen, so unchanged ones are shared (``dataclasses.replace`` the ones that
changed and pass new mappings). A producer that knows which workloads changed since
its previous snapshot says so (``changes``): the cycle then indexes
only those (:mod:`.workload_index`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gpupool.scheduling.model import Node, Tenant, TenantName, Workload, WorkloadUid


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadChanges:
    """The workloads added, replaced or removed between two workloads mappings.

    The contract: ``workloads`` (the snapshot's own mapping) is the mapping ``since`` (an
    earlier snapshot's) with each UID of ``uids`` added, replaced or removed, and nothing
    else changed; an entry replaced keeps its place in the mapping's order, and the
    entries added come after all others, in the order of ``uids`` (what a ``dict`` does,
    as long as no UID is removed and added again in between). A UID listed but unchanged
    is harmless. Both mappings are named by identity, so a snapshot given other
    workloads (``dataclasses.replace``) no longer matches its changes, which are then
    ignored."""

    since: Mapping[WorkloadUid, Workload]
    workloads: Mapping[WorkloadUid, Workload]
    uids: tuple[WorkloadUid, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    now: float
    """Seconds on the caller's clock; every ``*_at`` field uses the same clock."""
    nodes: tuple[Node, ...]
    tenants: Mapping[TenantName, Tenant]
    workloads: Mapping[WorkloadUid, Workload]
    """Pending, running and terminating workloads of the pool, by UID."""
    pool: str = "default"
    changes: WorkloadChanges | None = None
    """How ``workloads`` differs from an earlier snapshot's (``None``: not known). An
    optimization only: decisions are the same with or without it."""
