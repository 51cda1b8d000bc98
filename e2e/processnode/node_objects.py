"""The Node and Lease objects of a process node, and their heartbeats (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
PROCESS_NODE_LABEL = "gpupool.io/process-node"


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    name: str
    pool: str
    gpus: int
    gpu_model: str = "NVIDIA-A100-SXM4-80GB"
    rack: str = "rack-p"
    cpu: str = "16"
    memory: str = "64Gi"


def micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _capacity(node: NodeConfig) -> dict[str, str]:
    return {"cpu": node.cpu, "memory": node.memory, "pods": "110", "nvidia.com/gpu": str(node.gpus)}


def node_manifest(node: NodeConfig) -> dict[str, Any]:
    """No ``kwok.x-k8s.io/node`` annotation: kwok leaves it alone, this process node owns it."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {
                "kubernetes.io/hostname": node.name,
                "type": "process",
                PROCESS_NODE_LABEL: "true",
                "gpupool.io/pool": node.pool,
                "gpupool.io/gpu-model": node.gpu_model,
                "gpupool.io/rack": node.rack,
            },
        },
        "spec": {},
    }


def node_status(node: NodeConfig, *, now: datetime, ready: bool = True) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {
        "status": {
            "capacity": _capacity(node),
            "allocatable": _capacity(node),
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": node.name},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletStopped",
                    "message": "gpupool process node",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
            "nodeInfo": {
                "kubeletVersion": "v0.0.0-processnode",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
    }


def lease_manifest(node: NodeConfig, *, now: datetime) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node.name, "namespace": LEASE_NAMESPACE},
        "spec": {
            "holderIdentity": node.name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": micro_time(now),
        },
    }
