"""Nodes and our pods: parse into the cache, wake the affected pool's loop on change.

Node telemetry heartbeats arrive every few seconds per node; only changes that
matter to scheduling (readiness, cordon, capacity, a GPU's health) wake a loop.
Pod events wake the owner's pool when the pod's phase, node or deletion changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from gpupool.k8s import names
from gpupool.reconcilers.runtime import OperatorRuntime
from gpupool.state.parse import parse_node, parse_pod
from gpupool.state.records import NodeRecord, PodRecord, WorkloadKindName


def node_signature(node: NodeRecord) -> tuple[Any, ...]:
    """The parts of a node a scheduling decision depends on."""
    gpus: tuple[Any, ...] = ()
    if node.telemetry is not None:
        gpus = tuple(
            (
                gpu.index,
                gpu.lost,
                tuple(gpu.xid_history),
                gpu.ecc_volatile_uncorrected,
                None if gpu.temperature_c is None else int(gpu.temperature_c // 5),
                None if gpu.memory_free_mib is None else gpu.memory_free_mib // 1024,
            )
            for gpu in node.telemetry.gpus
        )
    return (
        node.ready,
        node.unschedulable,
        tuple(sorted(node.capacity.items())),
        tuple(sorted(node.labels.items())),
        gpus,
    )


def on_node_event(
    runtime: OperatorRuntime, event_type: str | None, body: Mapping[str, Any]
) -> None:
    name = str((body.get("metadata") or {}).get("name", ""))
    cache = runtime.cache
    if event_type == "DELETED":
        cache.remove_node(name)
        runtime.wakeups.poke_all()
        return
    record = parse_node(body, telemetry_parser=runtime.telemetry_parser)
    before = cache.node(name)
    cache.upsert_node(record)
    if before is None or node_signature(before) != node_signature(record):
        runtime.wakeups.poke_all()


def pod_signature(pod: PodRecord) -> tuple[Any, ...]:
    return (pod.phase, pod.node, pod.deleting, pod.ready)


def _owner_pool(runtime: OperatorRuntime, pod: PodRecord) -> str | None:
    if pod.owner_kind is WorkloadKindName.TRAINING_JOB:
        job = runtime.cache.job(pod.owner_uid)
        return None if job is None else job.pool
    service = runtime.cache.service(pod.owner_uid)
    return None if service is None else service.pool


def on_pod_event(runtime: OperatorRuntime, event_type: str | None, body: Mapping[str, Any]) -> None:
    record = parse_pod(body)
    if record is None:
        return
    cache = runtime.cache
    before = cache.pod_named(record.namespace, record.name)
    if event_type == "DELETED":
        cache.remove_pod(record.uid)
        changed = True
    else:
        cache.upsert_pod(record)
        changed = before is None or pod_signature(before) != pod_signature(record)
    if changed:
        pool = _owner_pool(runtime, record)
        if pool:
            runtime.wakeups.poke(pool)


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.event("", "v1", "nodes", registry=registry)
    def node_event(event: Mapping[str, Any], body: Mapping[str, Any], memo: Any, **_: Any) -> None:
        with memo.runtime.metrics.counting_errors("nodes"):
            on_node_event(memo.runtime, event.get("type"), body)

    @kopf.on.event("", "v1", "pods", labels={names.LABEL_ROLE: kopf.PRESENT}, registry=registry)
    def pod_event(event: Mapping[str, Any], body: Mapping[str, Any], memo: Any, **_: Any) -> None:
        with memo.runtime.metrics.counting_errors("pods"):
            on_pod_event(memo.runtime, event.get("type"), body)
