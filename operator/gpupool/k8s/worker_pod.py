"""Pure builders for a TrainingJob's worker pods and their rendezvous Service.

One pod per replica, from the user's ``PodTemplateSpec``. The first container is
the worker: it gets the torchrun environment, the GPU limit and the checkpoint
mount; other containers (sidecars) are left as the user wrote them.

Pod names carry the launch attempt (``<job>-<attempt>-w<replica>``) so a gang
restarted after a failure or a preemption never collides with the previous
gang's pods while those are still terminating.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpupool.k8s import names
from gpupool.k8s.bodies import Manifest, ObjectRef

DEFAULT_TORCH_PORT = 29500
DEFAULT_METRICS_PORT = 9400


@dataclass(frozen=True, slots=True, kw_only=True)
class TorchSettings:
    nproc_per_node: int
    """Processes per worker pod (``torch.nprocPerNode``; ``auto`` resolves to GPUs/replica)."""
    port: int = DEFAULT_TORCH_PORT
    backend: str = "auto"
    """``GPUPOOL_TORCH_BACKEND``: ``auto`` lets the worker pick nccl on GPUs, gloo on CPU."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointSettings:
    path: str
    every_seconds: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerGang:
    """What the worker pods of one launch of a TrainingJob have in common."""

    job: ObjectRef
    pool: str
    replicas: int
    """Worker pods in this launch (the torchrun node count, ``WORLD_SIZE``)."""
    gpus_per_replica: int
    attempt: int
    """Launches of this job before this one (gang restarts plus preemptions)."""
    torch: TorchSettings
    checkpoint: CheckpointSettings | None
    template: Mapping[str, Any]
    """The user's ``PodTemplateSpec`` (``metadata`` and ``spec``)."""
    gpu_resource_name: str = names.DEFAULT_GPU_RESOURCE
    metrics_port: int = DEFAULT_METRICS_PORT
    termination_grace_period_s: int = 120


def worker_pod_name(*, job: str, attempt: int, replica: int) -> str:
    return f"{job}-{attempt}-w{replica}"


def rendezvous_service_name(job: str) -> str:
    return names.dns_label(f"{job}-workers")


def worker_hostname(*, job: str, attempt: int, replica: int) -> str:
    return names.dns_label(worker_pod_name(job=job, attempt=attempt, replica=replica))


def needs_rendezvous_service(gang: WorkerGang) -> bool:
    """A single-pod gang rendezvous inside its own pod: no Service, one write less."""
    return gang.replicas > 1


def master_address(gang: WorkerGang) -> str:
    """DNS name of replica 0 through the headless rendezvous Service (loopback alone)."""
    if not needs_rendezvous_service(gang):
        return "127.0.0.1"
    host = worker_hostname(job=gang.job.name, attempt=gang.attempt, replica=0)
    return f"{host}.{rendezvous_service_name(gang.job.name)}.{gang.job.namespace}.svc"


def worker_labels(gang: WorkerGang, *, replica: int) -> dict[str, str]:
    return {
        names.LABEL_POOL: names.label_value(gang.pool),
        names.LABEL_JOB: names.label_value(gang.job.name),
        names.LABEL_ROLE: names.ROLE_WORKER,
        names.LABEL_REPLICA: str(replica),
        names.LABEL_ATTEMPT: str(gang.attempt),
    }


def torchrun_env(gang: WorkerGang, *, replica: int, gpu_indices: Sequence[int]) -> list[Manifest]:
    """The environment contract between the operator and ``workloads/`` trainers."""
    env = {
        "MASTER_ADDR": master_address(gang),
        "MASTER_PORT": str(gang.torch.port),
        "WORLD_SIZE": str(gang.replicas),
        "NODE_RANK": str(replica),
        "NPROC_PER_NODE": str(gang.torch.nproc_per_node),
        "GPUPOOL_TORCH_BACKEND": gang.torch.backend,
        "GPUPOOL_JOB": f"{gang.job.namespace}/{gang.job.name}",
        "GPUPOOL_RESTART_COUNT": str(gang.attempt),
        "GPUPOOL_METRICS_PORT": str(gang.metrics_port),
        "GPUPOOL_GPU_INDICES": ",".join(str(index) for index in gpu_indices),
    }
    if gang.checkpoint is not None:
        env["GPUPOOL_CHECKPOINT_DIR"] = gang.checkpoint.path
        env["GPUPOOL_CHECKPOINT_EVERY_SECONDS"] = str(gang.checkpoint.every_seconds)
    return [{"name": key, "value": value} for key, value in env.items()]


def worker_pod(
    gang: WorkerGang, *, replica: int, node: str, gpu_indices: Sequence[int]
) -> Manifest:
    """The pod of one replica, unbound (``schedulerName: gpupool``): bind it to ``node``."""
    name = worker_pod_name(job=gang.job.name, attempt=gang.attempt, replica=replica)
    template_meta: Mapping[str, Any] = gang.template.get("metadata") or {}
    spec: Manifest = copy.deepcopy(dict(gang.template.get("spec") or {}))
    containers: list[Manifest] = spec.get("containers") or [{"name": "worker"}]
    spec["containers"] = containers
    worker = containers[0]

    worker["env"] = _merge_env(
        worker.get("env") or [], torchrun_env(gang, replica=replica, gpu_indices=gpu_indices)
    )
    resources: Manifest = worker.setdefault("resources", {})
    limits: Manifest = resources.setdefault("limits", {})
    limits[gang.gpu_resource_name] = str(gang.gpus_per_replica)
    requests: Manifest | None = resources.get("requests")
    if requests is not None and gang.gpu_resource_name in requests:
        requests[gang.gpu_resource_name] = str(gang.gpus_per_replica)
    if gang.checkpoint is not None:
        _ensure_checkpoint_mount(spec, worker, gang.checkpoint.path)
    # The trainer's exit report (newest checkpoint) is the termination message; a
    # worker that failed without writing one shows its last log lines instead.
    worker["terminationMessagePolicy"] = "FallbackToLogsOnError"

    spec["schedulerName"] = names.SCHEDULER_NAME
    spec["restartPolicy"] = "Never"
    spec["hostname"] = worker_hostname(job=gang.job.name, attempt=gang.attempt, replica=replica)
    spec["subdomain"] = rendezvous_service_name(gang.job.name)
    spec["terminationGracePeriodSeconds"] = gang.termination_grace_period_s
    spec.pop("nodeName", None)

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": gang.job.namespace,
            "labels": {
                **(template_meta.get("labels") or {}),
                **worker_labels(gang, replica=replica),
            },
            "annotations": {
                **(template_meta.get("annotations") or {}),
                names.ANNOTATION_GPU_INDICES: ",".join(str(index) for index in gpu_indices),
                names.ANNOTATION_ASSIGNED_NODE: node,
            },
            "ownerReferences": [gang.job.owner_reference()],
        },
        "spec": spec,
    }


def rendezvous_service(gang: WorkerGang) -> Manifest:
    """Headless Service giving each worker a stable DNS name for torchrun rendezvous."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": rendezvous_service_name(gang.job.name),
            "namespace": gang.job.namespace,
            "labels": {
                names.LABEL_POOL: names.label_value(gang.pool),
                names.LABEL_JOB: names.label_value(gang.job.name),
            },
            "ownerReferences": [gang.job.owner_reference()],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {
                names.LABEL_JOB: names.label_value(gang.job.name),
                names.LABEL_ROLE: names.ROLE_WORKER,
            },
            "ports": [
                {
                    "name": "rendezvous",
                    "port": gang.torch.port,
                    "targetPort": gang.torch.port,
                    "protocol": "TCP",
                }
            ],
        },
    }


def _merge_env(user_env: Sequence[Manifest], ours: Sequence[Manifest]) -> list[Manifest]:
    """The user's variables, minus any we set, followed by ours (ours win)."""
    taken = {entry["name"] for entry in ours}
    return [entry for entry in user_env if entry.get("name") not in taken] + list(ours)


def _ensure_checkpoint_mount(spec: Manifest, worker: Manifest, path: str) -> None:
    """Mount a checkpoint volume at ``path`` unless the template already mounts one there.

    The user's template should provide a persistent volume (a PVC) mounted at the
    checkpoint path; without one the operator adds an ``emptyDir``, which keeps
    checkpoints across container restarts but not across nodes.
    """
    mounts: list[Manifest] = worker.setdefault("volumeMounts", [])
    if any(mount.get("mountPath") == path for mount in mounts):
        return
    mounts.append({"name": names.CHECKPOINT_VOLUME, "mountPath": path})
    volumes: list[Manifest] = spec.setdefault("volumes", [])
    if not any(volume.get("name") == names.CHECKPOINT_VOLUME for volume in volumes):
        volumes.append({"name": names.CHECKPOINT_VOLUME, "emptyDir": {}})
