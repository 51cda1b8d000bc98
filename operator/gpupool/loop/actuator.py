"""The only writer: carries out changes through the API client, with assume/forget.

Per change, in order: assume the new record in the cache; patch the status
(the commit point — on failure the assumption is forgotten and the workload is
decided again next cycle); then the writes, each idempotent (a pod that exists
counts as created, a pod already bound as bound, a pod already gone as deleted).
A failed write stops that change's remaining writes; the next cycle's lifecycle
pass finishes the job from the committed status. Events are best effort (and, with
an event executor, posted without holding up the cycle).
Changes for different objects run in parallel on a thread pool.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace

from gpupool.k8s import names
from gpupool.k8s.binding import binding
from gpupool.k8s.bodies import Event
from gpupool.k8s.client import KubeClient
from gpupool.k8s.errors import AlreadyExists, ApiError, Conflict, NotFound
from gpupool.loop.actions import BindPod, Change, CreateObject, DeletePod, DeleteWorkload, Write
from gpupool.metrics import OperatorMetrics
from gpupool.state.cache import ClusterCache
from gpupool.state.parse import parse_job, parse_pod, parse_pool, parse_service
from gpupool.state.records import JobRecord, PoolRecord, ServiceRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyReport:
    applied: int
    failed: int


class Actuator:
    def __init__(
        self,
        *,
        client: KubeClient,
        cache: ClusterCache,
        executor: Executor,
        metrics: OperatorMetrics | None = None,
        event_executor: Executor | None = None,
    ) -> None:
        self._client = client
        self._cache = cache
        self._executor = executor
        self._metrics = metrics
        self._event_executor = event_executor
        """When given, Events are posted there without waiting (they never hold a cycle)."""

    def apply(self, changes: Sequence[Change]) -> ApplyReport:
        """Carry out ``changes`` (blocking); how many went through completely."""
        if not changes:
            return ApplyReport(applied=0, failed=0)
        if len(changes) == 1:
            results = [self.apply_one(changes[0])]
        else:
            results = list(self._executor.map(self.apply_one, changes))
        done = sum(1 for ok in results if ok)
        return ApplyReport(applied=done, failed=len(results) - done)

    def apply_one(self, change: Change) -> bool:
        target = change.target
        if isinstance(change.assumed, JobRecord):
            self._cache.assume_job(change.assumed)
        elif isinstance(change.assumed, ServiceRecord):
            self._cache.assume_service(change.assumed)
        if change.status_patch is not None:
            try:
                body = self._client.patch_status(
                    plural=change.plural,
                    namespace=target.namespace or None,
                    name=target.name,
                    status=change.status_patch,
                )
            except ApiError as error:
                self._count("patch", error, resource=change.plural)
                self._forget(change)
                logger.warning("status of %s %s not written: %s", target.kind, _key(change), error)
                return False
            self._count("patch", None)
            self._commit(change, body)
        ok = True
        for write in change.writes:
            if not self._write(write):
                ok = False
                if not isinstance(write, DeletePod):
                    break
        for recorded in change.events:
            if self._event_executor is not None:
                self._event_executor.submit(self._post_event, recorded)
            else:
                self._post_event(recorded)
        return ok

    def _post_event(self, recorded: Event) -> None:
        try:
            self._client.create_event(recorded)
        except ApiError as error:
            logger.debug("event %s not recorded: %s", recorded["metadata"]["name"], error)

    def _forget(self, change: Change) -> None:
        if isinstance(change.assumed, JobRecord):
            self._cache.forget_job(change.assumed.uid)
        elif isinstance(change.assumed, ServiceRecord):
            self._cache.forget_service(change.assumed.uid)

    def _commit(self, change: Change, body: dict[str, object]) -> None:
        if change.plural == names.TRAINING_JOB_PLURAL:
            self._cache.commit_job(parse_job(body))
        elif change.plural == names.INFERENCE_SERVICE_PLURAL:
            self._cache.commit_service(parse_service(body))
        elif change.plural == names.POOL_PLURAL:
            pool = parse_pool(body)
            if isinstance(pool, PoolRecord):
                self._cache.upsert_pool(pool)

    def _write(self, write: Write) -> bool:
        try:
            if isinstance(write, CreateObject):
                return self._create(write)
            if isinstance(write, BindPod):
                return self._bind(write)
            if isinstance(write, DeletePod):
                return self._delete_pod(write)
            return self._delete_workload(write)
        except ApiError as error:
            self._count(type(write).__name__, error, resource=_resource(write))
            logger.warning("%s failed: %s", _describe(write), error)
            return False

    def _create(self, write: CreateObject) -> bool:
        manifest = write.manifest
        try:
            if manifest["kind"] == "Pod":
                created = self._client.create_pod(manifest)
                record = parse_pod(created)
                if record is not None:
                    self._cache.upsert_pod(record)
            else:
                self._client.create_service(manifest)
        except AlreadyExists:
            self._count("create", None)
            return True
        self._count("create", None)
        return True

    def _bind(self, write: BindPod) -> bool:
        try:
            self._client.bind_pod(
                binding(pod=write.name, namespace=write.namespace, node=write.node)
            )
        except Conflict:
            return True  # already bound (a retry after a lost answer, or a restarted operator)
        self._count("bind", None)
        record = self._cache.pod_named(write.namespace, write.name)
        if record is not None and record.node is None:
            self._cache.upsert_pod(replace(record, node=write.node))
        return True

    def _delete_pod(self, write: DeletePod) -> bool:
        try:
            self._client.delete_pod(
                namespace=write.namespace,
                name=write.name,
                grace_period_s=write.grace_period_s,
                uid=write.uid,
            )
        except NotFound:
            return True
        except Conflict:
            return True  # the uid precondition failed: a different pod of that name
        self._count("delete", None)
        record = self._cache.pod_named(write.namespace, write.name)
        if record is not None and record.uid == write.uid:
            self._cache.upsert_pod(replace(record, deleting=True))
        return True

    def _delete_workload(self, write: DeleteWorkload) -> bool:
        with contextlib.suppress(NotFound):
            self._client.delete_custom_object(
                plural=write.plural, namespace=write.namespace, name=write.name, uid=write.uid
            )
        self._count("delete", None)
        if write.plural == names.TRAINING_JOB_PLURAL:
            self._cache.remove_job(write.uid)
        else:
            self._cache.remove_service(write.uid)
        return True

    def _count(self, verb: str, error: ApiError | None, *, resource: str = "") -> None:
        if self._metrics is not None:
            outcome = "ok" if error is None else (error.reason or str(error.status))
            self._metrics.api_writes.labels(verb=verb, outcome=outcome).inc()
            if error is not None:
                self._metrics.reconcile_errors.labels(resource=resource).inc()


def _key(change: Change) -> str:
    target = change.target
    return f"{target.namespace}/{target.name}" if target.namespace else target.name


def _resource(write: Write) -> str:
    if isinstance(write, CreateObject):
        return "pods" if write.manifest.get("kind") == "Pod" else "services"
    if isinstance(write, DeleteWorkload):
        return write.plural
    return "pods"


def _describe(write: Write) -> str:
    if isinstance(write, CreateObject):
        meta = write.manifest.get("metadata", {})
        return f"create {write.manifest.get('kind')} {meta.get('namespace')}/{meta.get('name')}"
    if isinstance(write, BindPod):
        return f"bind pod {write.namespace}/{write.name} to {write.node}"
    if isinstance(write, DeletePod):
        return f"delete pod {write.namespace}/{write.name}"
    return f"delete {write.plural} {write.namespace}/{write.name}"
