"""How a pod becomes a local process (pure, apart from asking the port table for ports).

Mapping rules, because every pod shares this host:

1. The first container's ``command`` + ``args`` run; ``python``/``python3`` as the
   first word is this interpreter (the one with torch installed). No command: the
   pod cannot run (an image's entrypoint is unknown here).
2. Environment: this process's environment, then the container's ``env``
   (``value``, and ``valueFrom.fieldRef`` for name, namespace, uid, node name and
   IPs). A value that is a cluster DNS name (``*.svc``, ``*.svc.cluster.local``)
   becomes ``127.0.0.1``.
3. Ports: ``MASTER_PORT`` gets one host port per rendezvous address (all pods of a
   gang share it); ``GPUPOOL_METRICS_PORT`` and each declared ``containerPort`` get
   a host port of their own; the first declared port is also passed as
   ``GPUPOOL_SERVING_PORT``. Any ``*_PORT`` variable or ``--*port`` argument holding
   a mapped container port is rewritten. The mapping is returned for the
   ``processnode.gpupool.io/ports`` annotation.
4. Volumes: a ``persistentVolumeClaim`` is ``<state>/pvc/<namespace>/<claim>`` (so it
   outlives pods, as checkpoints must), a ``hostPath`` is itself, any other volume
   (``emptyDir``, and service-account tokens, config maps, secrets, left empty) is a
   directory of the pod. Environment values and arguments under a mount path are rewritten to
   the host directory, ``file://`` URIs too, and a ``pvc://CLAIM/PATH`` value (an
   InferenceService's model URI) becomes that path in the claim's directory; the
   working directory is the mapped ``workingDir`` or a per pod directory.
5. ``CUDA_VISIBLE_DEVICES`` is empty (CPU) unless GPUs are exposed, then the pod's
   ``gpupool.io/gpu-indices`` annotation.
6. The termination message file (``/dev/termination-log`` in a container) is a file of
   the pod, passed as ``GPUPOOL_TERMINATION_LOG`` (see :mod:`e2e.processnode.termination`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.processnode.ports import PortTable
from e2e.processnode.termination import ENV_TERMINATION_LOG

LOOPBACK = "127.0.0.1"
CLUSTER_DNS = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?\.svc(\.cluster\.local)?\.?$")
GPU_INDICES_ANNOTATION = "gpupool.io/gpu-indices"
PYTHON_NAMES = {"python", "python3"}

Manifest = dict[str, Any]


class CannotRun(ValueError):
    """The pod asks for something a process node cannot do."""


@dataclass(frozen=True, kw_only=True)
class HostContext:
    state_dir: Path
    python: str
    node_name: str
    base_env: Mapping[str, str]
    expose_gpus: bool = False


@dataclass(frozen=True, kw_only=True)
class ProcessSpec:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    termination_log: Path
    """The container's termination message file (empty at every start)."""
    message_policy: str | None
    """The container's ``terminationMessagePolicy``."""
    ports: dict[int, int]
    """Container port -> host port."""
    directories: list[Path]
    """Host directories to create before starting."""


def pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}/{meta['name']}/{meta['uid']}"


def _field_value(path: str, pod: Mapping[str, Any], node_name: str) -> str | None:
    meta = pod["metadata"]
    values = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.nodeName": node_name,
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "status.podIP": LOOPBACK,
        "status.hostIP": LOOPBACK,
    }
    return values.get(path)


def _volume_paths(pod: Mapping[str, Any], ctx: HostContext) -> dict[str, Path]:
    meta = pod["metadata"]
    paths: dict[str, Path] = {}
    for volume in pod["spec"].get("volumes") or []:
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            paths[name] = ctx.state_dir / "pvc" / meta["namespace"] / claim
        elif "hostPath" in volume:
            paths[name] = Path(volume["hostPath"]["path"])
        else:  # emptyDir; projected tokens, config maps and secrets are left empty here
            paths[name] = ctx.state_dir / "pods" / meta["uid"] / "volumes" / name
    return paths


def _mounts(container: Mapping[str, Any], volumes: Mapping[str, Path]) -> dict[str, Path]:
    """Mount path -> host directory."""
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        host = volumes.get(mount["name"])
        if host is None:
            raise CannotRun(f"volume mount {mount['name']!r} names no volume of the pod")
        mounts[mount["mountPath"].rstrip("/") or "/"] = host / mount.get("subPath", "")
    return mounts


def _map_uri(value: str, namespace: str, mounts: Mapping[str, Path], ctx: HostContext) -> str:
    """``pvc://CLAIM/PATH`` is the claim's host directory; ``file://PATH`` maps its path."""
    if value.startswith("pvc://"):
        claim, _, rest = value.removeprefix("pvc://").partition("/")
        return str(ctx.state_dir / "pvc" / namespace / claim / rest).rstrip("/")
    if value.startswith("file://"):
        return "file://" + _map_path(value.removeprefix("file://"), mounts)
    return _map_path(value, mounts)


def _map_path(value: str, mounts: Mapping[str, Path]) -> str:
    for mount_path in sorted(mounts, key=len, reverse=True):
        if value == mount_path or value.startswith(mount_path + "/"):
            return str(mounts[mount_path]) + value[len(mount_path) :]
    return value


def _container_env(
    container: Mapping[str, Any], pod: Mapping[str, Any], ctx: HostContext
) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        elif "fieldRef" in (entry.get("valueFrom") or {}):
            value = _field_value(entry["valueFrom"]["fieldRef"]["fieldPath"], pod, ctx.node_name)
            if value is not None:
                env[entry["name"]] = value
    return env


def _map_ports(
    env: dict[str, str],
    args: list[str],
    container: Mapping[str, Any],
    ports: PortTable,
) -> dict[int, int]:
    mapping: dict[int, int] = {}
    if "MASTER_PORT" in env:
        port = int(env["MASTER_PORT"])
        mapping[port] = ports.shared(env.get("MASTER_ADDR", ""), port)
    if "GPUPOOL_METRICS_PORT" in env:
        mapping[int(env["GPUPOOL_METRICS_PORT"])] = ports.private()
    declared = [int(p["containerPort"]) for p in container.get("ports") or []]
    for port in declared:
        mapping.setdefault(port, ports.private())
    if declared:
        env.setdefault("GPUPOOL_SERVING_PORT", str(declared[0]))
    for name, value in env.items():
        if name.endswith("_PORT") and value.isdigit() and int(value) in mapping:
            env[name] = str(mapping[int(value)])
    for index in range(1, len(args)):
        flag, value = args[index - 1], args[index]
        if flag.startswith("--") and "port" in flag and value.isdigit() and int(value) in mapping:
            args[index] = str(mapping[int(value)])
    return mapping


def process_spec(pod: Mapping[str, Any], ctx: HostContext, ports: PortTable) -> ProcessSpec:
    """The local process that plays ``pod``'s first container on this host."""
    meta, spec = pod["metadata"], pod["spec"]
    containers: Sequence[Mapping[str, Any]] = spec.get("containers") or []
    if not containers:
        raise CannotRun("the pod has no containers")
    container = containers[0]
    words = [*(container.get("command") or []), *(container.get("args") or [])]
    if not words:
        raise CannotRun("the container has no command (images are not run here)")
    if words[0] in PYTHON_NAMES:
        words[0] = ctx.python

    pod_dir = ctx.state_dir / "pods" / meta["uid"]
    mounts = _mounts(container, _volume_paths(pod, ctx))
    env = {**ctx.base_env, **_container_env(container, pod, ctx)}
    port_map = _map_ports(env, words, container, ports)  # keyed by the real MASTER_ADDR
    for name, value in env.items():
        if CLUSTER_DNS.match(value):
            env[name] = LOOPBACK
    env = {name: _map_uri(value, meta["namespace"], mounts, ctx) for name, value in env.items()}
    words = [_map_path(word, mounts) for word in words]
    indices = (meta.get("annotations") or {}).get(GPU_INDICES_ANNOTATION, "")
    env["CUDA_VISIBLE_DEVICES"] = indices if ctx.expose_gpus else ""
    env["HOSTNAME"] = spec.get("hostname") or meta["name"]
    env["PYTHONUNBUFFERED"] = "1"
    termination_log = pod_dir / "termination-log"
    env[ENV_TERMINATION_LOG] = str(termination_log)
    working_dir = container.get("workingDir")
    cwd = Path(_map_path(working_dir, mounts)) if working_dir else pod_dir / "work"
    return ProcessSpec(
        argv=words,
        env=env,
        cwd=cwd,
        log_path=ctx.state_dir / "logs" / f"{meta['namespace']}_{meta['name']}.log",
        termination_log=termination_log,
        message_policy=container.get("terminationMessagePolicy"),
        ports=port_map,
        directories=[cwd, pod_dir, *mounts.values()],
    )
