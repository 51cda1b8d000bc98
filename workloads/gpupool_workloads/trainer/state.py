"""Progress counters, RNG snapshots and parameter digests: the resumable state."""

from __future__ import annotations

import ctypes
import hashlib
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(kw_only=True)
class Progress:
    step: int = 0
    """Global optimizer steps done (across restarts and world sizes)."""
    epoch: int = 0
    samples_in_epoch: int = 0
    """Global samples of the current epoch's permutation already consumed."""
    samples_total: int = 0
    completed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Progress:
        return cls(
            step=int(raw["step"]),
            epoch=int(raw["epoch"]),
            samples_in_epoch=int(raw["samples_in_epoch"]),
            samples_total=int(raw["samples_total"]),
            completed=bool(raw["completed"]),
        )


def capture_rng(device: torch.device) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def restore_rng(saved: Mapping[str, Any], device: torch.device) -> None:
    random.setstate(saved["python"])
    torch.set_rng_state(saved["torch"])
    if device.type == "cuda" and saved.get("cuda") is not None:
        torch.cuda.set_rng_state(saved["cuda"], device)


def seed_rng(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def parameter_digest(model: nn.Module) -> str:
    """SHA-256 over the exact bytes of every state-dict tensor, in key order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(ctypes.string_at(flat.data_ptr(), flat.numel() * flat.element_size()))
    return digest.hexdigest()
