"""Full relist of everything the cache holds (startup, and periodically after that).

kopf restarts a watch after ``410 Gone`` by listing again, but never reports
objects that were deleted while the watch was down; a periodic relist replaces
the cache's contents so such objects can not linger (see
:meth:`ClusterCache.replace_pods`).
"""

from __future__ import annotations

from gpupool.k8s import names
from gpupool.k8s.client import KubeClient
from gpupool.state.cache import ClusterCache
from gpupool.state.parse import (
    TelemetryParser,
    parse_job,
    parse_node,
    parse_pod,
    parse_pool,
    parse_service,
)
from gpupool.state.records import PodRecord, PoolRecord

OUR_PODS = f"{names.LABEL_ROLE} in ({names.ROLE_WORKER},{names.ROLE_INFERENCE})"


def _version(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def resync(
    *, client: KubeClient, cache: ClusterCache, telemetry_parser: TelemetryParser | None
) -> None:
    """Relist pools, jobs, services, nodes and our pods into ``cache`` (raises ApiError)."""
    pools = client.list_custom_objects(plural=names.POOL_PLURAL)
    records: list[PoolRecord] = []
    errors: dict[str, str] = {}
    for body in pools.items:
        parsed = parse_pool(body)
        if isinstance(parsed, PoolRecord):
            records.append(parsed)
        else:
            errors[str((body.get("metadata") or {}).get("name"))] = parsed
    cache.replace_pools(records, errors)

    jobs = client.list_custom_objects(plural=names.TRAINING_JOB_PLURAL)
    cache.replace_jobs(
        [parse_job(body) for body in jobs.items], list_version=_version(jobs.resource_version)
    )
    services = client.list_custom_objects(plural=names.INFERENCE_SERVICE_PLURAL)
    cache.replace_services(
        [parse_service(body) for body in services.items],
        list_version=_version(services.resource_version),
    )
    nodes = client.list_nodes()
    cache.replace_nodes(parse_node(body, telemetry_parser=telemetry_parser) for body in nodes.items)
    pods = client.list_pods(label_selector=OUR_PODS)
    parsed_pods: list[PodRecord] = [
        record for body in pods.items if (record := parse_pod(body)) is not None
    ]
    cache.replace_pods(parsed_pods, list_version=_version(pods.resource_version))
