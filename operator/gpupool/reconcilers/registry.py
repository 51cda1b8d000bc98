"""All handlers on one fresh kopf registry (no import-time side effects)."""

from __future__ import annotations

import kopf

from gpupool.reconcilers import background, cluster, pools, workloads


def build_registry() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    background.register(registry)
    pools.register(registry)
    workloads.register(registry)
    cluster.register(registry)
    return registry
