"""Raw API bodies for tests, built fluently: ``job("bert").gpus(8).replicas(2).body()``."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Self

from gpupool.k8s.timestamps import rfc3339

T0 = 1_750_000_000.0


def pool_body(
    name: str = "a100",
    *,
    tenants: list[dict[str, Any]] | None = None,
    grace: int = 120,
    min_runtime: int = 300,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUPool",
        "metadata": {"name": name, "uid": f"pool-{name}", "generation": 1},
        "spec": {
            "nodeSelector": {"matchLabels": {"gpupool.io/pool": name}},
            "tenants": tenants
            if tenants is not None
            else [
                {"namespace": "team-a", "guaranteedGPUs": 8, "maxGPUs": 32, "weight": 3},
                {"namespace": "team-b", "guaranteedGPUs": 8},
            ],
            "auction": {"intervalSeconds": 1},
            "preemption": {"gracePeriodSeconds": grace, "minRuntimeSeconds": min_runtime},
        },
        "status": status or {},
    }


def node_body(
    name: str,
    *,
    pool: str = "a100",
    gpus: int = 8,
    ready: bool = True,
    rack: str = "r1",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "gpupool.io/pool": pool,
                "gpupool.io/rack": rack,
                "gpupool.io/gpu-model": "NVIDIA-A100-SXM4-80GB",
            },
            "annotations": annotations or {},
        },
        "spec": {},
        "status": {
            "capacity": {"cpu": "64", "nvidia.com/gpu": str(gpus)},
            "allocatable": {"cpu": "64", "nvidia.com/gpu": str(gpus)},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


@dataclass
class JobBody:
    name: str
    namespace: str = "team-a"
    spec: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    resource_version: int = 1
    created: float = T0

    def pool(self, pool: str) -> Self:
        self.spec["pool"] = pool
        return self

    def gpus(self, gpus: int) -> Self:
        self.spec["gpusPerReplica"] = gpus
        return self

    def replicas(self, replicas: int) -> Self:
        self.spec["replicas"] = replicas
        return self

    def priority(self, tier: str) -> Self:
        self.spec["priorityClass"] = tier
        return self

    def bid(self, price: float) -> Self:
        self.spec["bid"] = {"maxPricePerGPUHour": price}
        return self

    def in_namespace(self, namespace: str) -> Self:
        self.namespace = namespace
        return self

    def max_restarts(self, count: int) -> Self:
        self.spec["failurePolicy"] = {"maxRestarts": count}
        return self

    def ttl(self, seconds: int) -> Self:
        self.spec["ttlSecondsAfterFinished"] = seconds
        return self

    def with_status(self, **status: Any) -> Self:
        self.status.update(status)
        return self

    def version(self, resource_version: int) -> Self:
        self.resource_version = resource_version
        return self

    @property
    def uid(self) -> str:
        return f"uid-{self.name}"

    def body(self) -> dict[str, Any]:
        spec = {
            "pool": "a100",
            "replicas": 1,
            "gpusPerReplica": 1,
            "checkpoint": {"path": "/ckpt", "everySeconds": 60},
            "template": {
                "metadata": {"annotations": {"gpupool.io/complete-after": "30s"}},
                "spec": {"containers": [{"name": "trainer", "image": "trainer:1"}]},
            },
            **self.spec,
        }
        return {
            "apiVersion": "gpupool.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": self.uid,
                "generation": 1,
                "resourceVersion": str(self.resource_version),
                "creationTimestamp": rfc3339(self.created),
            },
            "spec": copy.deepcopy(spec),
            "status": copy.deepcopy(self.status),
        }


def job(name: str) -> JobBody:
    return JobBody(name=name)


def service_body(
    name: str,
    *,
    namespace: str = "team-b",
    replicas: int = 2,
    gpus: float = 1.0,
    memory_mib: int | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "pool": "a100",
        "priorityClass": "high",
        "replicas": replicas,
        "minReplicas": min(1, replicas),
        "gpusPerReplica": gpus,
        "template": {"spec": {"containers": [{"name": "server", "image": "server:1"}]}},
    }
    if memory_mib is not None:
        spec["gpuMemoryMiB"] = memory_mib
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",
            "creationTimestamp": rfc3339(T0),
        },
        "spec": spec,
        "status": status or {},
    }


def pod_body(
    name: str,
    *,
    owner: str,
    owner_kind: str = "TrainingJob",
    namespace: str = "team-a",
    replica: int = 0,
    attempt: int = 0,
    node: str | None = "n1",
    assigned: str = "n1",
    gpus: str = "0",
    phase: str = "Running",
    exit_code: int | None = None,
    message: str | None = None,
    deleting: bool = False,
    ready: bool = True,
    resource_version: int = 1,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if exit_code is not None:
        terminated: dict[str, Any] = {"exitCode": exit_code}
        if message is not None:
            terminated["message"] = message
        status["containerStatuses"] = [{"name": "trainer", "state": {"terminated": terminated}}]
    role = "worker" if owner_kind == "TrainingJob" else "inference"
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"pod-{name}",
        "resourceVersion": str(resource_version),
        "labels": {
            "gpupool.io/role": role,
            "gpupool.io/replica": str(replica),
            "gpupool.io/attempt": str(attempt),
        },
        "annotations": {"gpupool.io/assigned-node": assigned, "gpupool.io/gpu-indices": gpus},
        "ownerReferences": [
            {
                "apiVersion": "gpupool.io/v1alpha1",
                "kind": owner_kind,
                "name": owner,
                "uid": f"uid-{owner}",
                "controller": True,
            }
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = rfc3339(T0)
    spec: dict[str, Any] = {"containers": [{"name": "trainer"}]}
    if node is not None:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}
