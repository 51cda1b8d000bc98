"""Synthetic large clusters for the cycle benchmark (seeded, reproducible)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from gpupool.scheduling.model import (
    GPU,
    Allocation,
    Node,
    NodeName,
    ReplicaPlacement,
    Tenant,
    TenantName,
    Tier,
    Workload,
    WorkloadKind,
    WorkloadUid,
)
from gpupool.scheduling.snapshot import Snapshot

_MEMORY_MIB = 81_920


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSpec:
    nodes: int = 4000
    gpus_per_node: int = 8
    running: int = 30_000
    pending: int = 20_000
    tenants: int = 50
    unhealthy_fraction: float = 0.005
    terminating_fraction: float = 0.01
    seed: int = 7


def make_nodes(spec: ClusterSpec, rng: random.Random) -> tuple[Node, ...]:
    nodes: list[Node] = []
    domains = 2 if spec.gpus_per_node >= 8 else 1
    per_domain = max(1, spec.gpus_per_node // domains)
    for n in range(spec.nodes):
        gpus = tuple(
            GPU(
                index=i,
                memory_total_mib=_MEMORY_MIB,
                memory_free_mib=_MEMORY_MIB - rng.randrange(0, 2048),
                healthy=rng.random() >= spec.unhealthy_fraction,
                utilization_ratio=rng.random(),
                nvlink_domain=i // per_domain,
                temperature_c=40.0 + 30.0 * rng.random(),
            )
            for i in range(spec.gpus_per_node)
        )
        nodes.append(Node(name=NodeName(f"node-{n:05d}"), gpus=gpus))
    return tuple(nodes)


def _tier(rng: random.Random) -> Tier:
    roll = rng.random()
    return Tier.HIGH if roll < 0.1 else Tier.LOW if roll < 0.3 else Tier.NORMAL


def make_snapshot(spec: ClusterSpec, *, now: float = 1_000_000.0) -> Snapshot:
    """A busy pool: ``running`` workloads packed onto nodes, ``pending`` mixed-size gangs."""
    rng = random.Random(spec.seed)
    nodes = make_nodes(spec, rng)
    total_gpus = spec.nodes * spec.gpus_per_node
    tenant_names = [TenantName(f"team-{t:03d}") for t in range(spec.tenants)]
    share = total_gpus * 0.6 / max(1, spec.tenants)
    tenants = {
        name: Tenant(
            name=name,
            guaranteed_gpus=int(share * (0.5 + rng.random())),
            max_gpus=None,
            weight=1.0,
            credits_per_hour=share,
            credits_max=share * 24,
            credit_balance=share * 24 * rng.random(),
        )
        for name in tenant_names
    }
    workloads: dict[WorkloadUid, Workload] = {}
    # Running: mostly single GPUs with some 2- and 4-GPU replicas, packed node by node.
    sizes = [1] * 90 + [2] * 7 + [4] * 3
    budget = min(spec.running, total_gpus)
    node_index = 0
    used_on_node = 0
    for r in range(budget):
        size = rng.choice(sizes)
        if used_on_node + size > spec.gpus_per_node:
            node_index += 1
            used_on_node = 0
        if node_index >= spec.nodes:
            break
        start = now - rng.uniform(0, 86_400)
        uid = WorkloadUid(f"run-{r:06d}")
        workloads[uid] = Workload(
            uid=uid,
            name=uid,
            tenant=rng.choice(tenant_names),
            tier=_tier(rng),
            gpus_per_replica=size,
            bid_per_gpu_hour=rng.choice([None, None, None, round(rng.uniform(0.1, 4), 2)]),
            submitted_at=start - rng.uniform(0, 3600),
            allocation=Allocation(
                replicas=(
                    ReplicaPlacement(
                        node=nodes[node_index].name,
                        gpu_indices=tuple(range(used_on_node, used_on_node + size)),
                    ),
                ),
                started_at=start,
            ),
            preempted_at=now - 10 if rng.random() < spec.terminating_fraction else None,
            last_checkpoint_at=start + rng.uniform(0, now - start),
            attained_service_s=rng.uniform(0, 3600),
        )
        used_on_node += size
    shapes = [(1, 1)] * 60 + [(2, 1)] * 10 + [(4, 1)] * 10 + [(8, 1)] * 12 + [(8, 2)] * 6
    shapes += [(8, 4)] * 2
    for p in range(spec.pending):
        gpus, replicas = rng.choice(shapes)
        uid = WorkloadUid(f"pend-{p:06d}")
        inference = rng.random() < 0.1
        workloads[uid] = Workload(
            uid=uid,
            name=uid,
            tenant=rng.choice(tenant_names),
            kind=WorkloadKind.INFERENCE if inference else WorkloadKind.TRAINING,
            tier=_tier(rng),
            replicas=replicas,
            min_replicas=1 if replicas > 1 and rng.random() < 0.2 else None,
            gpus_per_replica=gpus,
            bid_per_gpu_hour=rng.choice([None, None, round(rng.uniform(0.1, 4), 2)]),
            submitted_at=now - rng.uniform(0, 7200),
            attained_service_s=rng.choice([0.0, 0.0, rng.uniform(0, 3600)]),
        )
    return Snapshot(now=now, nodes=nodes, tenants=tenants, workloads=workloads)
