"""What an InferenceService's replica pods say must happen next (pure).

1. ``PLACED``: replicas whose node left the pool are dropped (the scale request
   re-places them); replicas beyond ``spec.replicas`` are removed (scale down,
   highest slots first); finished replica pods are deleted and recreated in
   their slot; missing pods are created and bound; ``status.replicas`` /
   ``readyReplicas`` follow the pods (the scale subresource reads them).
2. ``RELEASING``: once no pod holds GPUs, back to the queue.
3. ``QUEUED``: no pods; ``status.selector`` is set so ``kubectl scale`` and an HPA work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gpupool.k8s import names
from gpupool.k8s.conditions import set_condition
from gpupool.k8s.inference_pod import selector_string, service_url, serving_port
from gpupool.loop.actions import Change, Write
from gpupool.loop.context import CycleContext
from gpupool.loop.pods import launch_replicas, remove_pods, stop_pods
from gpupool.loop.status import minimal_patch, patched_service
from gpupool.state.records import PodRecord, ServiceRecord
from gpupool.state.stages import (
    CONDITION_PREEMPTING,
    CONDITION_READY,
    CONDITION_SCHEDULED,
    Stage,
    conditions_of,
    service_stage,
)


def service_change(
    service: ServiceRecord,
    patch: Mapping[str, Any],
    *,
    writes: tuple[Write, ...] = (),
    urgent: bool = True,
) -> Change | None:
    patch = minimal_patch(service.raw_status, patch)
    if not patch and not writes:
        return None
    return Change(
        target=service.ref,
        plural=names.INFERENCE_SERVICE_PLURAL,
        status_patch=patch or None,
        assumed=patched_service(service, patch) if patch else None,
        writes=writes,
        urgent=urgent,
    )


def base_status(service: ServiceRecord) -> dict[str, Any]:
    """Fields every InferenceService status carries (selector and URL for clients and HPA)."""
    spec = service.spec
    assert spec is not None
    return {
        "selector": selector_string(service.name),
        "url": service_url(
            service=service.name, namespace=service.namespace, port=serving_port(spec.template)
        ),
    }


def service_lifecycle(
    service: ServiceRecord, pods: Sequence[PodRecord], ctx: CycleContext
) -> Change | None:
    spec = service.spec
    if spec is None or service.deleting:
        return None
    stage = service_stage(service)
    live = [pod for pod in pods if not pod.terminal and not pod.deleting]
    if stage is Stage.RELEASING:
        holding = [pod for pod in pods if pod.holds_gpus]
        if holding:
            writes = stop_pods(holding, grace_period_s=ctx.grace_period_s)
            return service_change(service, {}, writes=writes) if writes else None
        patch = {
            **base_status(service),
            "replicas": 0,
            "readyReplicas": 0,
            "placement": None,
            "allocatedGPUs": 0,
            "pricePerGPUHour": None,
            "message": "requeued after preemption",
            "conditions": _conditions(
                service,
                ctx.now,
                (CONDITION_SCHEDULED, False, "Released", "GPUs released"),
                (CONDITION_PREEMPTING, False, "Released", ""),
                (CONDITION_READY, False, "Released", "no replicas"),
            ),
        }
        return service_change(service, patch, writes=remove_pods(pods))
    if stage is Stage.QUEUED:
        writes = stop_pods(live, grace_period_s=0) + remove_pods(pods)
        patch = {**base_status(service), "replicas": len(live), "readyReplicas": 0}
        return service_change(service, patch, writes=writes)

    placement = sorted(service.status.placement or [], key=lambda entry: entry.replica)
    kept = [entry for entry in placement if entry.node in ctx.pool_nodes][: spec.replicas]
    kept_slots = {entry.replica for entry in kept}
    leaving = [pod for pod in pods if pod.replica not in kept_slots]
    staying = [pod for pod in pods if pod.replica in kept_slots]
    placed_writes: tuple[Write, ...] = stop_pods(leaving, grace_period_s=ctx.grace_period_s)
    placed_writes += remove_pods(staying)
    restartable = [pod for pod in staying if not pod.terminal]
    placed_writes += launch_replicas(
        service,
        placement=kept,
        existing=restartable,
        ctx=ctx,
        with_service=any(not pod_exists(entry.replica, staying) for entry in kept),
    )
    running = [pod for pod in staying if not pod.terminal and not pod.deleting]
    ready = sum(1 for pod in running if pod.ready)
    placed_patch: dict[str, Any] = {
        **base_status(service),
        "replicas": len(running),
        "readyReplicas": ready,
        "message": f"{ready}/{spec.replicas} replicas ready",
        "conditions": _conditions(
            service,
            ctx.now,
            (
                CONDITION_READY,
                ready > 0 and ready >= min(spec.min_replicas, spec.replicas),
                "ReplicasReady" if ready else "NoReadyReplicas",
                f"{ready}/{spec.replicas} replicas ready",
            ),
        ),
    }
    if len(kept) != len(placement):
        placed_patch["placement"] = [entry.model_dump(mode="json") for entry in kept] or None
        if not kept:
            placed_patch["conditions"] = _conditions(
                service, ctx.now, (CONDITION_SCHEDULED, False, "NodesLost", "all replicas lost")
            )
    return service_change(service, placed_patch, writes=placed_writes)


def pod_exists(slot: int, pods: Sequence[PodRecord]) -> bool:
    return any(pod.replica == slot and not pod.terminal for pod in pods)


def _conditions(
    service: ServiceRecord, now: float, *updates: tuple[str, bool, str, str]
) -> list[Any]:
    conditions: list[Any] = list(conditions_of(service.raw_status))
    for type_, status, reason, message in updates:
        conditions = list(
            set_condition(
                conditions, type_=type_, status=status, reason=reason, message=message, now=now
            )
        )
    return conditions
