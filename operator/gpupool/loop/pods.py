"""From a workload record and a placement to the manifests and writes that launch it."""

from __future__ import annotations

from collections.abc import Sequence

from gpupool.api.common import ReplicaPlacement as StatusPlacement
from gpupool.k8s.inference_pod import (
    ReplicaSetSpec,
    client_service,
    replica_pod,
    replica_pod_name,
)
from gpupool.k8s.worker_pod import (
    CheckpointSettings,
    TorchSettings,
    WorkerGang,
    needs_rendezvous_service,
    rendezvous_service,
    worker_pod,
    worker_pod_name,
)
from gpupool.loop.actions import BindPod, CreateObject, DeletePod, Write
from gpupool.loop.context import CycleContext
from gpupool.state.records import JobRecord, PodRecord, ServiceRecord


def worker_gang(job: JobRecord, *, attempt: int, replicas: int, ctx: CycleContext) -> WorkerGang:
    spec = job.spec
    assert spec is not None
    nproc = spec.torch.nproc_per_node
    return WorkerGang(
        job=job.ref,
        pool=ctx.pool,
        replicas=replicas,
        gpus_per_replica=spec.gpus_per_replica,
        attempt=attempt,
        torch=TorchSettings(
            nproc_per_node=spec.gpus_per_replica if nproc == "auto" else nproc,
            port=spec.torch.port,
            backend=spec.torch.backend,
        ),
        checkpoint=CheckpointSettings(
            path=spec.checkpoint.path, every_seconds=spec.checkpoint.every_seconds
        )
        if spec.checkpoint is not None
        else None,
        template=spec.template,
        gpu_resource_name=ctx.gpu_resource_name,
        metrics_port=ctx.metrics_port,
        termination_grace_period_s=ctx.grace_period_s,
    )


def replica_set(service: ServiceRecord, *, ctx: CycleContext) -> ReplicaSetSpec:
    spec = service.spec
    assert spec is not None
    whole = spec.gpus_per_replica >= 1
    return ReplicaSetSpec(
        service=service.ref,
        pool=ctx.pool,
        gpus_per_replica=int(spec.gpus_per_replica) if whole else 0,
        gpu_fraction=None if whole else spec.gpus_per_replica,
        gpu_memory_mib=spec.gpu_memory_mib,
        model_uri=spec.model.uri if spec.model is not None else None,
        template=spec.template,
        gpu_resource_name=ctx.gpu_resource_name,
        metrics_port=ctx.metrics_port,
    )


def launch_gang(
    job: JobRecord,
    *,
    attempt: int,
    placement: Sequence[StatusPlacement],
    existing: Sequence[PodRecord],
    ctx: CycleContext,
) -> tuple[Write, ...]:
    """Rendezvous Service, then every missing pod, then every unbound bind (idempotent)."""
    gang = worker_gang(job, attempt=attempt, replicas=len(placement), ctx=ctx)
    by_name = {pod.name: pod for pod in existing}
    creates: list[Write] = []
    binds: list[Write] = []
    for entry in placement:
        name = worker_pod_name(job=job.name, attempt=attempt, replica=entry.replica)
        pod = by_name.get(name)
        if pod is None:
            creates.append(
                CreateObject(
                    manifest=worker_pod(
                        gang, replica=entry.replica, node=entry.node, gpu_indices=entry.gpus
                    )
                )
            )
        if pod is None or (pod.node is None and not pod.deleting):
            binds.append(BindPod(namespace=job.namespace, name=name, node=entry.node))
    if not creates and not binds:
        return ()
    service: list[Write] = (
        [CreateObject(manifest=rendezvous_service(gang))]
        if creates and needs_rendezvous_service(gang)
        else []
    )
    return (*service, *creates, *binds)


def launch_replicas(
    service: ServiceRecord,
    *,
    placement: Sequence[StatusPlacement],
    existing: Sequence[PodRecord],
    ctx: CycleContext,
    with_service: bool,
) -> tuple[Write, ...]:
    """Client Service (first placement), then missing replica pods and their binds."""
    spec_set = replica_set(service, ctx=ctx)
    by_name = {pod.name: pod for pod in existing}
    creates: list[Write] = []
    binds: list[Write] = []
    for entry in placement:
        name = replica_pod_name(service=service.name, slot=entry.replica)
        pod = by_name.get(name)
        if pod is None:
            creates.append(
                CreateObject(
                    manifest=replica_pod(
                        spec_set, slot=entry.replica, node=entry.node, gpu_indices=entry.gpus
                    )
                )
            )
        if pod is None or (pod.node is None and not pod.deleting):
            binds.append(BindPod(namespace=service.namespace, name=name, node=entry.node))
    head: list[Write] = [CreateObject(manifest=client_service(spec_set))] if with_service else []
    return (*head, *creates, *binds)


def stop_pods(pods: Sequence[PodRecord], *, grace_period_s: int) -> tuple[Write, ...]:
    """Graceful deletion of pods that still run (already-deleting pods are left alone)."""
    return tuple(
        DeletePod(
            namespace=pod.namespace, name=pod.name, uid=pod.uid, grace_period_s=grace_period_s
        )
        for pod in sorted(pods, key=lambda pod: pod.name)
        if not pod.deleting and not pod.terminal
    )


def remove_pods(pods: Sequence[PodRecord]) -> tuple[Write, ...]:
    """Deletion of finished pods (no grace needed: nothing runs in them)."""
    return tuple(
        DeletePod(namespace=pod.namespace, name=pod.name, uid=pod.uid, grace_period_s=0)
        for pod in sorted(pods, key=lambda pod: pod.name)
        if not pod.deleting and pod.terminal
    )
