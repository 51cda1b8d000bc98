"""The GPU hardware of simulated (kwok) nodes, from their Node objects.

The local cluster's kwok nodes carry ``nvidia.com/gpu`` capacity and labels
(``gpupool.io/gpu-model`` such as ``NVIDIA-A100-SXM4-80GB``,
``gpupool.io/nvlink-domain``); :func:`simulated_nodes_from` turns them into
:class:`SimulatedNode` specs. Memory per GPU comes from the model name
(``80GB`` -> 81920 MiB), board power from the model family.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gpupool.k8s import names
from gpupool.scheduling.model import NodeName

DEFAULT_MODEL = "NVIDIA-A100-SXM4-80GB"
DEFAULT_MEMORY_MIB = 81920
_BOARD_POWER_W = (
    ("H200", 700.0),
    ("H100", 700.0),
    ("B200", 1000.0),
    ("A100", 400.0),
    ("L40", 300.0),
    ("A10", 150.0),
    ("T4", 70.0),
)
_MEMORY_IN_NAME = re.compile(r"(\d+)\s*GB", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedNode:
    name: NodeName
    gpu_count: int
    model: str = DEFAULT_MODEL
    memory_total_mib: int = DEFAULT_MEMORY_MIB
    board_power_w: float = 400.0
    gpus_per_nvlink_domain: int = 0
    """GPUs per NVLink island (0 = all GPUs of the node form one, as on HGX boards)."""

    def nvlink_domain(self, index: int) -> int:
        size = self.gpus_per_nvlink_domain or self.gpu_count
        return (index // size) * size

    def nvlink_peers(self, index: int) -> tuple[int, ...]:
        domain = self.nvlink_domain(index)
        size = self.gpus_per_nvlink_domain or self.gpu_count
        return tuple(
            peer for peer in range(domain, min(domain + size, self.gpu_count)) if peer != index
        )


def simulated_node(name: str, *, gpu_count: int, model: str = DEFAULT_MODEL) -> SimulatedNode:
    """A node spec with memory and power derived from the model name."""
    return SimulatedNode(
        name=NodeName(name),
        gpu_count=gpu_count,
        model=model,
        memory_total_mib=memory_from_model(model),
        board_power_w=board_power_from_model(model),
    )


def simulated_nodes_from(
    nodes: Iterable[Mapping[str, Any]], *, gpu_resource: str = names.DEFAULT_GPU_RESOURCE
) -> tuple[SimulatedNode, ...]:
    """Specs of the nodes with GPU capacity, sorted by name (pure; raw Node bodies in)."""
    specs = []
    for node in nodes:
        metadata = node.get("metadata") or {}
        labels: Mapping[str, str] = metadata.get("labels") or {}
        capacity: Mapping[str, str] = (node.get("status") or {}).get("capacity") or {}
        try:
            count = int(capacity.get(gpu_resource) or labels.get("nvidia.com/gpu.count") or 0)
        except ValueError:
            count = 0
        if count <= 0:
            continue
        model = labels.get(names.NODE_LABEL_GPU_MODEL) or DEFAULT_MODEL
        specs.append(simulated_node(str(metadata.get("name", "")), gpu_count=count, model=model))
    return tuple(sorted(specs, key=lambda spec: spec.name))


def memory_from_model(model: str) -> int:
    found = _MEMORY_IN_NAME.search(model)
    return int(found.group(1)) * 1024 if found else DEFAULT_MEMORY_MIB


def board_power_from_model(model: str) -> float:
    upper = model.upper()
    for family, watts in _BOARD_POWER_W:
        if family in upper:
            return watts
    return 400.0
