"""The ``v1/Binding`` that assigns one of our unbound pods to the node the core chose."""

from __future__ import annotations

from gpupool.k8s.bodies import Binding


def binding(*, pod: str, namespace: str, node: str) -> Binding:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod, "namespace": namespace},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
