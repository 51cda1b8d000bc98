"""The operator's picture of the cluster, fed by watch events, read by scheduling cycles.

Writers are the reconcilers (watch events, on the event loop) and the actuator
(answers to its own writes, on worker threads); readers take a
:class:`PoolView` — a consistent, immutable copy of one pool's objects — and
build the core's snapshot from it without holding the lock.

Assume/forget (Kueue's ``assumeWorkload``): before the actuator writes a
decision it *assumes* the workload's new record, so a cycle that starts before
the watch event arrives already sees the GPUs as taken; a failed write
*forgets* it again. The API server's answer to a successful write replaces the
assumption (:meth:`ClusterCache.commit_job`). Events older than a record the
cache holds (by resourceVersion) are dropped, so a late watch event can not
undo what the operator just wrote.

Checkpoint reports (a terminated worker's termination message) outlive their
pods: a preempted pod is deleted right after its container exits, often before
a cycle reads it, so the newest report per owner is kept until the owner goes.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from gpupool.state.records import JobRecord, NodeRecord, PodRecord, PoolRecord, ServiceRecord
from gpupool.state.selectors import matches


class _Versioned(Protocol):
    @property
    def uid(self) -> str: ...

    @property
    def resource_version(self) -> int: ...


V = TypeVar("V", bound=_Versioned)


def _relisted(current: Mapping[str, V], listed: Iterable[V], list_version: int) -> dict[str, V]:
    """The listed records, plus held ones newer than the list (by resourceVersion)."""
    result = {record.uid: record for record in listed}
    if not list_version:
        return result
    for uid, held in current.items():
        if held.resource_version > list_version and (
            uid not in result or held.resource_version > result[uid].resource_version
        ):
            result[uid] = held
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolView:
    """Everything one scheduling cycle of one pool reads, copied at one instant."""

    pool: PoolRecord
    nodes: tuple[NodeRecord, ...]
    jobs: tuple[JobRecord, ...]
    services: tuple[ServiceRecord, ...]
    pods_by_owner: Mapping[str, tuple[PodRecord, ...]]
    reported_checkpoints: Mapping[str, float] = field(default_factory=dict)
    """Owner UID -> newest checkpoint time its pods reported, deleted pods included."""

    def pods_of(self, owner_uid: str) -> tuple[PodRecord, ...]:
        return self.pods_by_owner.get(owner_uid, ())

    def reported_checkpoint(self, owner_uid: str) -> float | None:
        return self.reported_checkpoints.get(owner_uid)


class ClusterCache:
    """Thread-safe store of pools, jobs, services, nodes and our pods."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[str, PoolRecord] = {}
        self._pool_errors: dict[str, str] = {}
        self._jobs: dict[str, JobRecord] = {}
        self._assumed_jobs: dict[str, JobRecord] = {}
        self._services: dict[str, ServiceRecord] = {}
        self._assumed_services: dict[str, ServiceRecord] = {}
        self._nodes: dict[str, NodeRecord] = {}
        self._pods: dict[str, PodRecord] = {}
        self._pods_by_owner: dict[str, dict[str, PodRecord]] = defaultdict(dict)
        self._pod_uid_by_name: dict[tuple[str, str], str] = {}
        self._reported_checkpoints: dict[str, float] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        """Bumped by every change; lets a loop skip a cycle when nothing happened."""
        return self._generation

    # -- pools ----------------------------------------------------------------------

    def upsert_pool(self, record: PoolRecord) -> None:
        with self._lock:
            self._pools[record.name] = record
            self._pool_errors.pop(record.name, None)
            self._generation += 1

    def set_pool_error(self, name: str, error: str) -> None:
        """A pool whose spec does not parse: known to exist, never scheduled."""
        with self._lock:
            self._pools.pop(name, None)
            self._pool_errors[name] = error
            self._generation += 1

    def remove_pool(self, name: str) -> None:
        with self._lock:
            self._pools.pop(name, None)
            self._pool_errors.pop(name, None)
            self._generation += 1

    def pool(self, name: str) -> PoolRecord | None:
        with self._lock:
            return self._pools.get(name)

    def pool_names(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._pools))

    def pool_exists(self, name: str) -> bool:
        with self._lock:
            return name in self._pools or name in self._pool_errors

    # -- jobs and services ----------------------------------------------------------

    def upsert_job(self, record: JobRecord) -> None:
        """A watch event: ignored when older than what the cache holds."""
        with self._lock:
            current = self._jobs.get(record.uid)
            if current is not None and record.resource_version < current.resource_version:
                return
            self._jobs[record.uid] = record
            self._generation += 1

    def commit_job(self, record: JobRecord) -> None:
        """The API server's answer to our own write: replaces the assumption."""
        with self._lock:
            self._assumed_jobs.pop(record.uid, None)
            current = self._jobs.get(record.uid)
            if current is None or record.resource_version >= current.resource_version:
                self._jobs[record.uid] = record
            self._generation += 1

    def assume_job(self, record: JobRecord) -> None:
        with self._lock:
            self._assumed_jobs[record.uid] = record
            self._generation += 1

    def forget_job(self, uid: str) -> None:
        with self._lock:
            self._assumed_jobs.pop(uid, None)
            self._generation += 1

    def remove_job(self, uid: str) -> None:
        with self._lock:
            self._jobs.pop(uid, None)
            self._assumed_jobs.pop(uid, None)
            self._reported_checkpoints.pop(uid, None)
            self._generation += 1

    def job(self, uid: str) -> JobRecord | None:
        with self._lock:
            return self._assumed_jobs.get(uid) or self._jobs.get(uid)

    def jobs(self) -> tuple[JobRecord, ...]:
        with self._lock:
            return tuple(self._assumed_jobs.get(uid) or job for uid, job in self._jobs.items())

    def upsert_service(self, record: ServiceRecord) -> None:
        with self._lock:
            current = self._services.get(record.uid)
            if current is not None and record.resource_version < current.resource_version:
                return
            self._services[record.uid] = record
            self._generation += 1

    def commit_service(self, record: ServiceRecord) -> None:
        with self._lock:
            self._assumed_services.pop(record.uid, None)
            current = self._services.get(record.uid)
            if current is None or record.resource_version >= current.resource_version:
                self._services[record.uid] = record
            self._generation += 1

    def assume_service(self, record: ServiceRecord) -> None:
        with self._lock:
            self._assumed_services[record.uid] = record
            self._generation += 1

    def forget_service(self, uid: str) -> None:
        with self._lock:
            self._assumed_services.pop(uid, None)
            self._generation += 1

    def remove_service(self, uid: str) -> None:
        with self._lock:
            self._services.pop(uid, None)
            self._assumed_services.pop(uid, None)
            self._generation += 1

    def service(self, uid: str) -> ServiceRecord | None:
        with self._lock:
            return self._assumed_services.get(uid) or self._services.get(uid)

    def services(self) -> tuple[ServiceRecord, ...]:
        with self._lock:
            return tuple(
                self._assumed_services.get(uid) or service
                for uid, service in self._services.items()
            )

    # -- nodes and pods -------------------------------------------------------------

    def upsert_node(self, record: NodeRecord) -> None:
        with self._lock:
            self._nodes[record.name] = record
            self._generation += 1

    def node(self, name: str) -> NodeRecord | None:
        with self._lock:
            return self._nodes.get(name)

    def remove_node(self, name: str) -> None:
        with self._lock:
            self._nodes.pop(name, None)
            self._generation += 1

    def upsert_pod(self, record: PodRecord) -> None:
        with self._lock:
            current = self._pods.get(record.uid)
            if current is not None and record.resource_version < current.resource_version:
                return
            self._store_pod(record)

    def remove_pod(self, uid: str) -> None:
        with self._lock:
            record = self._pods.pop(uid, None)
            if record is not None:
                if self._pod_uid_by_name.get((record.namespace, record.name)) == uid:
                    del self._pod_uid_by_name[(record.namespace, record.name)]
                owned = self._pods_by_owner.get(record.owner_uid)
                if owned is not None:
                    owned.pop(uid, None)
                    if not owned:
                        del self._pods_by_owner[record.owner_uid]
            self._generation += 1

    def pods_of(self, owner_uid: str) -> tuple[PodRecord, ...]:
        with self._lock:
            return tuple(self._pods_by_owner.get(owner_uid, {}).values())

    def pod_named(self, namespace: str, name: str) -> PodRecord | None:
        with self._lock:
            uid = self._pod_uid_by_name.get((namespace, name))
            return None if uid is None else self._pods.get(uid)

    def _store_pod(self, record: PodRecord) -> None:
        self._pods[record.uid] = record
        self._pod_uid_by_name[(record.namespace, record.name)] = record.uid
        self._pods_by_owner[record.owner_uid][record.uid] = record
        reported = record.checkpoint_at
        if reported is not None and reported > self._reported_checkpoints.get(
            record.owner_uid, float("-inf")
        ):
            self._reported_checkpoints[record.owner_uid] = reported
        self._generation += 1

    # -- relist (after watch trouble) -------------------------------------------------
    #
    # A relist replaces what the cache holds, except records newer than the list
    # (a watch event or our own write that arrived after the list was read), so
    # objects deleted while a watch was down disappear and nothing regresses.

    def replace_nodes(self, records: Iterable[NodeRecord]) -> None:
        with self._lock:
            self._nodes = {record.name: record for record in records}
            self._generation += 1

    def replace_pods(self, records: Iterable[PodRecord], *, list_version: int = 0) -> None:
        with self._lock:
            listed = _relisted(self._pods, records, list_version)
            self._pods = {}
            self._pods_by_owner = defaultdict(dict)
            self._pod_uid_by_name = {}
            for record in listed.values():
                self._store_pod(record)

    def replace_jobs(self, records: Iterable[JobRecord], *, list_version: int = 0) -> None:
        with self._lock:
            listed = _relisted(self._jobs, records, list_version)
            self._jobs = listed
            self._assumed_jobs = {
                uid: job for uid, job in self._assumed_jobs.items() if uid in self._jobs
            }
            self._reported_checkpoints = {
                uid: at for uid, at in self._reported_checkpoints.items() if uid in self._jobs
            }
            self._generation += 1

    def replace_services(self, records: Iterable[ServiceRecord], *, list_version: int = 0) -> None:
        with self._lock:
            listed = _relisted(self._services, records, list_version)
            self._services = listed
            self._assumed_services = {
                uid: svc for uid, svc in self._assumed_services.items() if uid in self._services
            }
            self._generation += 1

    def replace_pools(self, records: Iterable[PoolRecord], errors: Mapping[str, str]) -> None:
        with self._lock:
            self._pools = {record.name: record for record in records}
            self._pool_errors = dict(errors)
            self._generation += 1

    # -- reading ----------------------------------------------------------------------

    def pool_view(self, name: str) -> PoolView | None:
        """A consistent copy of one pool's objects, or ``None`` if the pool is unknown."""
        with self._lock:
            pool = self._pools.get(name)
            if pool is None:
                return None
            selector = pool.spec.node_selector
            nodes = tuple(
                sorted(
                    (node for node in self._nodes.values() if matches(selector, node.labels)),
                    key=lambda node: node.name,
                )
            )
            jobs = tuple(
                self._assumed_jobs.get(uid) or job
                for uid, job in self._jobs.items()
                if job.pool == name
            )
            services = tuple(
                self._assumed_services.get(uid) or service
                for uid, service in self._services.items()
                if service.pool == name
            )
            owners = [job.uid for job in jobs] + [service.uid for service in services]
            pods_by_owner = {
                owner: tuple(self._pods_by_owner[owner].values())
                for owner in owners
                if owner in self._pods_by_owner
            }
            reported = {
                job.uid: self._reported_checkpoints[job.uid]
                for job in jobs
                if job.uid in self._reported_checkpoints
            }
            return PoolView(
                pool=pool,
                nodes=nodes,
                jobs=jobs,
                services=services,
                pods_by_owner=pods_by_owner,
                reported_checkpoints=reported,
            )
