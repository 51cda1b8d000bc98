"""What a cycle's pure planning functions know besides the objects themselves."""

from __future__ import annotations

from dataclasses import dataclass

from gpupool.k8s import names
from gpupool.k8s.worker_pod import DEFAULT_METRICS_PORT


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleContext:
    pool: str
    now: float
    grace_period_s: int
    """The pool's ``preemption.gracePeriodSeconds``: checkpoint window of victims."""
    pool_nodes: frozenset[str]
    """Nodes that belong to the pool now; placements elsewhere are lost."""
    reporting_instance: str
    """This operator replica's identity (Events' ``reportingInstance``)."""
    gpu_resource_name: str = names.DEFAULT_GPU_RESOURCE
    metrics_port: int = DEFAULT_METRICS_PORT
