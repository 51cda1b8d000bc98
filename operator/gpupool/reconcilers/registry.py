"""All handlers on one fresh kopf registry (no import-time side effects)."""

from __future__ import annotations

from typing import Any

import kopf

from gpupool.reconcilers import background, cluster, pools, workloads


def build_registry() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In a pod: the service account; elsewhere: $KUBECONFIG (kopf's own readers)."""
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(
            **kwargs
        ) or kopf.login_with_kubeconfig(**kwargs)
        return info

    background.register(registry)
    pools.register(registry)
    workloads.register(registry)
    cluster.register(registry)
    return registry
