from __future__ import annotations

from typing import Any

from gpupool.scheduling.model import NodeName
from gpupool.telemetry.sim_load import GPULoad, loads_from_pods, lookup_in

N1 = NodeName("gpu-node-001")
TOTAL = {N1: 80000}


def pod(
    *,
    node: str = N1,
    indices: str | None = "0",
    phase: str = "Running",
    role: str = "worker",
    **annotations: str,
) -> dict[str, Any]:
    notes = {key.replace("_", "-"): value for key, value in annotations.items()}
    if indices is not None:
        notes["gpupool.io/gpu-indices"] = indices
    return {
        "metadata": {
            "labels": {"gpupool.io/role": role},
            "annotations": {f"gpupool.io/{k}" if "/" not in k else k: v for k, v in notes.items()},
        },
        "spec": {"nodeName": node},
        "status": {"phase": phase},
    }


def test_training_worker_fills_its_gpus() -> None:
    loads = loads_from_pods([pod(indices="0,1")], memory_total_mib=TOTAL)
    assert loads == {
        (N1, 0): GPULoad(memory_mib=72000, utilization_pct=95.0),
        (N1, 1): GPULoad(memory_mib=72000, utilization_pct=95.0),
    }


def test_shared_inference_replicas_add_up_by_their_requests() -> None:
    replicas = [
        pod(role="inference", gpu_fraction="0.25", gpu_memory_mib="12000"),
        pod(role="inference", gpu_fraction="0.5", gpu_memory_mib="30000"),
    ]
    load = loads_from_pods(replicas, memory_total_mib=TOTAL)[(N1, 0)]
    assert load.memory_mib == 42000
    assert round(load.utilization_pct, 6) == 52.5


def test_whole_gpu_inference_uses_requested_memory() -> None:
    load = loads_from_pods([pod(role="inference", gpu_memory_mib="20000")], memory_total_mib=TOTAL)[
        (N1, 0)
    ]
    assert load == GPULoad(memory_mib=20000, utilization_pct=60.0)


def test_sim_overrides_and_caps() -> None:
    pods = [pod(sim_gpu_memory_mib="70000", sim_gpu_utilization="80") for _ in range(2)]
    assert loads_from_pods(pods, memory_total_mib=TOTAL)[(N1, 0)] == GPULoad(
        memory_mib=80000, utilization_pct=100.0
    )


def test_ignored_pods() -> None:
    pods = [
        pod(phase="Pending"),
        pod(node="elsewhere"),
        pod(indices=None),
        pod(indices="x,y"),
    ]
    assert loads_from_pods(pods, memory_total_mib=TOTAL) == {}


def test_lookup_defaults_to_idle() -> None:
    lookup = lookup_in({(N1, 2): GPULoad(memory_mib=5, utilization_pct=1.0)})
    assert lookup(N1, 2).memory_mib == 5
    assert lookup(N1, 3) == GPULoad()
