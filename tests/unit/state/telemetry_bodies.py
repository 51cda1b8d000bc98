"""Node bodies carrying the agent's telemetry annotation, and a pool view built from them."""

from __future__ import annotations

from typing import Any

from gpupool.scheduling.model import NodeName
from gpupool.state.cache import ClusterCache, PoolView
from gpupool.state.parse import parse_job, parse_node, parse_pod, parse_pool, parse_service
from gpupool.state.records import PoolRecord
from gpupool.telemetry.annotations import decode_node_telemetry, encode_node_telemetry
from gpupool.telemetry.model import GPUTelemetry, NodeTelemetry
from tests.unit.state.bodies import node_body, pool_body
from tests.unit.telemetry.builders import gpu


def reported_node(
    name: str, *, at: float, gpus: list[GPUTelemetry] | None = None, count: int = 8
) -> dict[str, Any]:
    """A pool node whose agent last reported ``gpus`` (default: ``count`` idle ones) at ``at``."""
    report = NodeTelemetry(
        node=NodeName(name),
        timestamp=at,
        gpus=tuple(gpus if gpus is not None else [gpu(index) for index in range(count)]),
        source="simulated",
    )
    return node_body(name, gpus=len(report.gpus), annotations=encode_node_telemetry(report))


def pool_view(*bodies: dict[str, Any], pool: dict[str, Any] | None = None) -> PoolView:
    """The ``a100`` pool's view of ``bodies``, nodes parsed with the operator's telemetry
    parser."""
    cache = ClusterCache()
    record = parse_pool(pool or pool_body("a100"))
    assert isinstance(record, PoolRecord)
    cache.upsert_pool(record)
    for body in bodies:
        kind = body["kind"]
        if kind == "Node":
            cache.upsert_node(parse_node(body, telemetry_parser=decode_node_telemetry))
        elif kind == "TrainingJob":
            cache.upsert_job(parse_job(body))
        elif kind == "InferenceService":
            cache.upsert_service(parse_service(body))
        elif kind == "Pod":
            pod = parse_pod(body)
            assert pod is not None
            cache.upsert_pod(pod)
    view = cache.pool_view("a100")
    assert view is not None
    return view
