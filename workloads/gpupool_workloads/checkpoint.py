"""Checkpoint files: atomic writes, discovery of the latest, and the payload layout.

A checkpoint directory holds ``ckpt-<step, 12 digits>.pt`` files. A file is written
under a hidden temporary name, flushed and fsynced, renamed into place, and the
directory is fsynced, so a reader (a restarted trainer, the inference server) sees
either a complete checkpoint or none. The latest checkpoint is the one with the
highest step. The payload is a plain dict of tensors and builtins, loadable with
``torch.load(..., weights_only=True)``::

    format          "gpupool-checkpoint/1"
    model           ModelSpec.to_dict(): name, input_shape, num_classes, kwargs
    model_state     state dict of the unwrapped module (CPU tensors)
    optimizer_state, scaler_state (None without fp16 AMP)
    progress        {step, epoch, samples_in_epoch, samples_total, completed}
    world_size      of the run that wrote it
    rng             one entry per rank: {python, torch, cuda}
    reason          "periodic" | "preempted" | "final"
    saved_at_unix, job, restart_count
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gpupool_workloads.errors import CheckpointError

FORMAT = "gpupool-checkpoint/1"
_NAME = re.compile(r"ckpt-(\d{12})\.pt")


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"ckpt-{step:012d}.pt"


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest step first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.fullmatch(p.name))]
    return [path for _, path in sorted(found)]


def latest_checkpoint(directory: Path) -> Path | None:
    checkpoints = list_checkpoints(directory)
    return checkpoints[-1] if checkpoints else None


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_checkpoint(directory: Path, step: int, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as the checkpoint of ``step``, atomically and durably."""
    final = checkpoint_path(directory, step)
    temporary = directory / f".{final.name}.{os.getpid()}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as handle:
            torch.save(dict(payload), handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(final)
        _fsync_directory(directory)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise CheckpointError(f"writing {final}: {error}") from error
    return final


def prune_checkpoints(directory: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest checkpoints; returns what was deleted."""
    doomed = list_checkpoints(directory)[:-keep] if keep > 0 else []
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises OSError, pickle and runtime errors alike
        raise CheckpointError(f"reading {path}: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    return payload
