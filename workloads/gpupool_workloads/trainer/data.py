"""In-memory classification datasets: a learnable synthetic one, or tensors from a file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from gpupool_workloads.errors import ConfigError
from gpupool_workloads.models import ModelSpec


@dataclass(frozen=True)
class TensorDataset:
    inputs: torch.Tensor
    """Shape ``(N, *input_shape)``, float."""
    targets: torch.Tensor
    """Shape ``(N,)``, int64 class indices."""

    def __len__(self) -> int:
        return int(self.targets.shape[0])


def synthetic_dataset(spec: ModelSpec, *, samples: int, seed: int) -> TensorDataset:
    """Gaussian inputs labelled by a fixed random linear teacher: learnable, deterministic.

    Every rank builds the same tensors from the same seed, so no data is shipped.
    """
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn((samples, *spec.input_shape), generator=generator)
    teacher = torch.randn((math.prod(spec.input_shape), spec.num_classes), generator=generator)
    targets = (inputs.reshape(samples, -1) @ teacher).argmax(dim=1)
    return TensorDataset(inputs=inputs, targets=targets)


def file_dataset(path: Path, spec: ModelSpec) -> TensorDataset:
    """``torch.save({"inputs": Tensor[N, ...], "targets": LongTensor[N]}, path)``."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"dataset file {path} does not exist") from None
    if not isinstance(raw, dict) or not {"inputs", "targets"} <= raw.keys():
        raise ConfigError(f"{path} must hold a dict with 'inputs' and 'targets' tensors")
    inputs, targets = raw["inputs"], raw["targets"]
    if tuple(inputs.shape[1:]) != spec.input_shape:
        raise ConfigError(
            f"{path}: inputs have sample shape {tuple(inputs.shape[1:])}, "
            f"the model expects {spec.input_shape}"
        )
    if targets.shape != (inputs.shape[0],):
        raise ConfigError(f"{path}: targets must have shape ({inputs.shape[0]},)")
    return TensorDataset(inputs=inputs.float(), targets=targets.long())


def load_dataset(
    spec: ModelSpec, *, data_path: Path | None, synthetic_samples: int, seed: int
) -> TensorDataset:
    if data_path is None:
        return synthetic_dataset(spec, samples=synthetic_samples, seed=seed)
    return file_dataset(data_path, spec)
