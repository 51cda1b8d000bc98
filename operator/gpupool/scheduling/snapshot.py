"""The immutable input of one scheduling cycle.

The operator's state cache builds one per cycle from Kubernetes objects and
node-agent telemetry; the simulator builds one from its event queue. Building a
new snapshot from the previous one is cheap: nodes, tenants and workloads are
frozen, so unchanged ones are shared (``dataclasses.replace`` the ones that
changed and pass new mappings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gpupool.scheduling.model import Node, Tenant, TenantName, Workload, WorkloadUid


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    now: float
    """Seconds on the caller's clock; every ``*_at`` field uses the same clock."""
    nodes: tuple[Node, ...]
    tenants: Mapping[TenantName, Tenant]
    workloads: Mapping[WorkloadUid, Workload]
    """Pending, running and terminating workloads of the pool, by UID."""
    pool: str = "default"
