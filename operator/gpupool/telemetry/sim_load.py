"""What the workloads bound to a simulated GPU use: memory and SM utilization.

The simulated source asks a :data:`LoadLookup` per GPU; in the agent that lookup
is built from the pods the operator bound to kwok nodes (pure:
:func:`loads_from_pods`), in tests and the benchmark it is any callable.

From a pod (``status.phase == Running``, ``spec.nodeName`` set), using the
annotations the operator writes (``gpupool.io/gpu-indices`` and, for shared
GPUs, ``gpupool.io/gpu-fraction`` / ``gpupool.io/gpu-memory-mib``):

* training worker (whole GPUs): 90% of the GPU's memory, 95% utilization;
* inference replica on whole GPUs: its ``gpu-memory-mib`` or 60% of memory, 60%;
* inference replica on a GPU share: its ``gpu-memory-mib`` (or fraction x
  memory), utilization 70% x fraction.

``gpupool.io/sim-gpu-memory-mib`` and ``gpupool.io/sim-gpu-utilization`` on a
pod override both (per GPU), so a test can script exact figures. Loads of pods
sharing a GPU add up, capped at the GPU's memory and 100%.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gpupool.k8s import names
from gpupool.scheduling.model import NodeName

ANNOTATION_SIM_MEMORY_MIB = f"{names.GROUP}/sim-gpu-memory-mib"
ANNOTATION_SIM_UTILIZATION = f"{names.GROUP}/sim-gpu-utilization"

TRAINING_MEMORY_FRACTION = 0.9
TRAINING_UTILIZATION_PCT = 95.0
INFERENCE_MEMORY_FRACTION = 0.6
INFERENCE_UTILIZATION_PCT = 60.0
SHARED_BUSY_FACTOR = 0.7


@dataclass(frozen=True, slots=True, kw_only=True)
class GPULoad:
    """Expected use of one GPU by what runs on it (zero when idle)."""

    memory_mib: int = 0
    utilization_pct: float = 0.0

    def plus(self, other: GPULoad) -> GPULoad:
        return GPULoad(
            memory_mib=self.memory_mib + other.memory_mib,
            utilization_pct=self.utilization_pct + other.utilization_pct,
        )


IDLE = GPULoad()

LoadLookup = Callable[[NodeName, int], GPULoad]
"""``(node, gpu index) -> load``; :data:`IDLE` for an unused GPU."""

GpuKey = tuple[NodeName, int]


def idle_everywhere(node: NodeName, gpu: int) -> GPULoad:
    """A :data:`LoadLookup` for a cluster with nothing running."""
    return IDLE


def loads_from_pods(
    pods: Iterable[Mapping[str, Any]], *, memory_total_mib: Mapping[NodeName, int]
) -> dict[GpuKey, GPULoad]:
    """Per ``(node, gpu)`` the summed expected load of the running pods bound there.

    ``memory_total_mib`` is each node's per-GPU memory; pods on other nodes, not
    running, or without ``gpupool.io/gpu-indices`` are ignored.
    """
    loads: dict[GpuKey, GPULoad] = {}
    for pod in pods:
        node = NodeName(str((pod.get("spec") or {}).get("nodeName") or ""))
        if node not in memory_total_mib:
            continue
        if (pod.get("status") or {}).get("phase") != "Running":
            continue
        metadata = pod.get("metadata") or {}
        annotations: Mapping[str, str] = metadata.get("annotations") or {}
        labels: Mapping[str, str] = metadata.get("labels") or {}
        indices = _indices(annotations.get(names.ANNOTATION_GPU_INDICES, ""))
        if not indices:
            continue
        load = _pod_load(annotations, labels, memory_total_mib[node])
        for index in indices:
            loads[(node, index)] = loads.get((node, index), IDLE).plus(load)
    return {
        key: GPULoad(
            memory_mib=min(load.memory_mib, memory_total_mib[key[0]]),
            utilization_pct=min(load.utilization_pct, 100.0),
        )
        for key, load in loads.items()
    }


def lookup_in(loads: Mapping[GpuKey, GPULoad]) -> LoadLookup:
    """A :data:`LoadLookup` over a mapping (missing GPUs are idle)."""

    def lookup(node: NodeName, gpu: int) -> GPULoad:
        return loads.get((node, gpu), IDLE)

    return lookup


def _pod_load(annotations: Mapping[str, str], labels: Mapping[str, str], total_mib: int) -> GPULoad:
    fraction = _number(annotations.get(names.ANNOTATION_GPU_FRACTION))
    requested_mib = _number(annotations.get(names.ANNOTATION_GPU_MEMORY_MIB))
    if fraction is not None:
        memory = requested_mib if requested_mib is not None else fraction * total_mib
        utilization = 100.0 * fraction * SHARED_BUSY_FACTOR
    elif labels.get(names.LABEL_ROLE) == names.ROLE_INFERENCE:
        memory = (
            requested_mib if requested_mib is not None else INFERENCE_MEMORY_FRACTION * total_mib
        )
        utilization = INFERENCE_UTILIZATION_PCT
    else:
        memory = TRAINING_MEMORY_FRACTION * total_mib
        utilization = TRAINING_UTILIZATION_PCT
    override_memory = _number(annotations.get(ANNOTATION_SIM_MEMORY_MIB))
    override_utilization = _number(annotations.get(ANNOTATION_SIM_UTILIZATION))
    return GPULoad(
        memory_mib=int(override_memory if override_memory is not None else memory),
        utilization_pct=override_utilization if override_utilization is not None else utilization,
    )


def _indices(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        return ()


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
