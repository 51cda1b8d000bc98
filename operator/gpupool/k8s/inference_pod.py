"""Pure builders for an InferenceService's replica pods and its client Service.

Replica pods are named by slot (``<service>-r<slot>``); the core decides how many
slots run and where. A replica uses whole GPUs (an ``nvidia.com/gpu`` limit) or a
share of one GPU (no extended-resource limit, the share and its memory recorded
in annotations for the node agent), as the core placed it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpupool.k8s import names
from gpupool.k8s.bodies import Manifest, ObjectRef

DEFAULT_SERVING_PORT = 8080
DEFAULT_METRICS_PORT = 9400
MODEL_VOLUME = "gpupool-model"
MODEL_MOUNT_ROOT = "/mnt/models"
"""Where the server reads ``pvc://CLAIM/PATH`` (``$GPUPOOL_MODEL_MOUNT_ROOT/CLAIM/PATH``,
the workloads contract's default root): the claim is mounted at ``<root>/CLAIM``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelLocation:
    """Where a server finds ``spec.model.uri`` inside its container."""

    uri: str
    path: str | None
    """``GPUPOOL_MODEL_PATH``; ``None`` when the server must fetch the URI itself."""
    claim: str | None
    """PersistentVolumeClaim to mount read-only at ``/mnt/models/<claim>``."""


def model_location(uri: str | None) -> ModelLocation | None:
    """``pvc://<claim>/<path>`` -> the claim mounted at ``/mnt/models/<claim>``;
    ``file:///<path>`` -> that path; any other scheme -> the URI only."""
    if uri is None:
        return None
    scheme, _, rest = uri.partition("://")
    if scheme == "pvc" and rest:
        claim, _, inner = rest.partition("/")
        return ModelLocation(
            uri=uri, path=f"{MODEL_MOUNT_ROOT}/{claim}/{inner}".rstrip("/"), claim=claim
        )
    if scheme == "file" and rest.startswith("/"):
        return ModelLocation(uri=uri, path=rest, claim=None)
    return ModelLocation(uri=uri, path=None, claim=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaSetSpec:
    """What the replica pods of one InferenceService have in common."""

    service: ObjectRef
    pool: str
    gpus_per_replica: int
    """Whole GPUs per replica; 0 when replicas use a share of one GPU."""
    gpu_fraction: float | None
    gpu_memory_mib: int | None
    model_uri: str | None
    template: Mapping[str, Any]
    gpu_resource_name: str = names.DEFAULT_GPU_RESOURCE
    metrics_port: int = DEFAULT_METRICS_PORT
    termination_grace_period_s: int = 30


def replica_pod_name(*, service: str, slot: int) -> str:
    return f"{service}-r{slot}"


def service_selector(service: str) -> dict[str, str]:
    return {
        names.LABEL_SERVICE: names.label_value(service),
        names.LABEL_ROLE: names.ROLE_INFERENCE,
    }


def selector_string(service: str) -> str:
    """``status.selector`` for the scale subresource (``kubectl scale``, HPA)."""
    return ",".join(f"{key}={value}" for key, value in service_selector(service).items())


def client_service_name(service: str) -> str:
    return names.dns_label(service)


def service_url(*, service: str, namespace: str, port: int) -> str:
    return f"http://{client_service_name(service)}.{namespace}.svc:{port}"


def serving_port(template: Mapping[str, Any]) -> int:
    """The first container's first declared port, or 8080."""
    containers: Sequence[Mapping[str, Any]] = (template.get("spec") or {}).get("containers") or []
    if containers:
        ports: Sequence[Mapping[str, Any]] = containers[0].get("ports") or []
        if ports and isinstance(ports[0].get("containerPort"), int):
            return int(ports[0]["containerPort"])
    return DEFAULT_SERVING_PORT


def replica_pod(
    replica_set: ReplicaSetSpec, *, slot: int, node: str, gpu_indices: Sequence[int]
) -> Manifest:
    """The pod of one serving replica, unbound (``schedulerName: gpupool``)."""
    name = replica_pod_name(service=replica_set.service.name, slot=slot)
    template_meta: Mapping[str, Any] = replica_set.template.get("metadata") or {}
    spec: Manifest = copy.deepcopy(dict(replica_set.template.get("spec") or {}))
    containers: list[Manifest] = spec.get("containers") or [{"name": "server"}]
    spec["containers"] = containers
    server = containers[0]
    indices = ",".join(str(index) for index in gpu_indices)

    port = serving_port(replica_set.template)
    env = {
        "GPUPOOL_SERVICE": f"{replica_set.service.namespace}/{replica_set.service.name}",
        "GPUPOOL_REPLICA": str(slot),
        "GPUPOOL_GPU_INDICES": indices,
        "GPUPOOL_METRICS_PORT": str(replica_set.metrics_port),
        "GPUPOOL_SERVING_PORT": str(port),
    }
    model = model_location(replica_set.model_uri)
    if model is not None:
        env["GPUPOOL_MODEL_URI"] = model.uri
        if model.path is not None:
            env["GPUPOOL_MODEL_PATH"] = model.path
        if model.claim is not None:
            env["GPUPOOL_MODEL_MOUNT_ROOT"] = MODEL_MOUNT_ROOT
            _mount_model_claim(spec, server, model.claim)
    if replica_set.gpu_memory_mib is not None:
        env["GPUPOOL_GPU_MEMORY_MIB"] = str(replica_set.gpu_memory_mib)
    ours = [{"name": key, "value": value} for key, value in env.items()]
    server["env"] = [e for e in server.get("env") or [] if e.get("name") not in env] + ours

    annotations: dict[str, str] = {
        **(template_meta.get("annotations") or {}),
        names.ANNOTATION_GPU_INDICES: indices,
        names.ANNOTATION_ASSIGNED_NODE: node,
    }
    if replica_set.gpus_per_replica > 0:
        limits: Manifest = server.setdefault("resources", {}).setdefault("limits", {})
        limits[replica_set.gpu_resource_name] = str(replica_set.gpus_per_replica)
    else:
        if replica_set.gpu_fraction is not None:
            annotations[names.ANNOTATION_GPU_FRACTION] = f"{replica_set.gpu_fraction:g}"
        if replica_set.gpu_memory_mib is not None:
            annotations[names.ANNOTATION_GPU_MEMORY_MIB] = str(replica_set.gpu_memory_mib)

    spec["schedulerName"] = names.SCHEDULER_NAME
    spec["terminationGracePeriodSeconds"] = replica_set.termination_grace_period_s
    spec.pop("nodeName", None)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": replica_set.service.namespace,
            "labels": {
                **(template_meta.get("labels") or {}),
                names.LABEL_POOL: names.label_value(replica_set.pool),
                **service_selector(replica_set.service.name),
                names.LABEL_REPLICA: str(slot),
            },
            "annotations": annotations,
            "ownerReferences": [replica_set.service.owner_reference()],
        },
        "spec": spec,
    }


def _mount_model_claim(spec: Manifest, server: Manifest, claim: str) -> None:
    """The claim, read-only, at ``/mnt/models/<claim>`` (unless the template mounts
    something there already: two mounts at one path make the pod invalid)."""
    path = f"{MODEL_MOUNT_ROOT}/{claim}"
    mounts: list[Manifest] = server.setdefault("volumeMounts", [])
    if any(mount.get("mountPath") == path for mount in mounts):
        return
    if not any(mount.get("name") == MODEL_VOLUME for mount in mounts):
        mounts.append({"name": MODEL_VOLUME, "mountPath": path, "readOnly": True})
    volumes: list[Manifest] = spec.setdefault("volumes", [])
    if not any(volume.get("name") == MODEL_VOLUME for volume in volumes):
        volumes.append(
            {
                "name": MODEL_VOLUME,
                "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
            }
        )


def client_service(replica_set: ReplicaSetSpec) -> Manifest:
    """ClusterIP Service in front of the ready replicas."""
    port = serving_port(replica_set.template)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": client_service_name(replica_set.service.name),
            "namespace": replica_set.service.namespace,
            "labels": {
                names.LABEL_POOL: names.label_value(replica_set.pool),
                names.LABEL_SERVICE: names.label_value(replica_set.service.name),
            },
            "ownerReferences": [replica_set.service.owner_reference()],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": service_selector(replica_set.service.name),
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }
