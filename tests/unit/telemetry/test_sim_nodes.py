from __future__ import annotations

from gpupool.scheduling.model import NodeName
from gpupool.telemetry.sim_nodes import SimulatedNode, simulated_nodes_from


def node_body(name: str, gpus: str | None, model: str | None = None) -> dict[str, object]:
    labels = {"type": "kwok"}
    if model:
        labels["gpupool.io/gpu-model"] = model
    capacity = {"cpu": "96"} | ({"nvidia.com/gpu": gpus} if gpus else {})
    return {"metadata": {"name": name, "labels": labels}, "status": {"capacity": capacity}}


def test_kwok_nodes_become_specs_sorted_with_model_memory_and_power() -> None:
    specs = simulated_nodes_from(
        [
            node_body("b", "4", "NVIDIA-H100-80GB-HBM3"),
            node_body("a", "8", "NVIDIA-A100-SXM4-40GB"),
            node_body("cpu-only", None),
        ]
    )
    assert [(s.name, s.gpu_count, s.memory_total_mib, s.board_power_w) for s in specs] == [
        ("a", 8, 40960, 400.0),
        ("b", 4, 81920, 700.0),
    ]


def test_nvlink_islands() -> None:
    whole = SimulatedNode(name=NodeName("n"), gpu_count=8)
    assert whole.nvlink_domain(7) == 0
    assert whole.nvlink_peers(0) == (1, 2, 3, 4, 5, 6, 7)
    halves = SimulatedNode(name=NodeName("n"), gpu_count=8, gpus_per_nvlink_domain=4)
    assert [halves.nvlink_domain(i) for i in (0, 3, 4, 7)] == [0, 0, 4, 4]
    assert halves.nvlink_peers(5) == (4, 6, 7)
