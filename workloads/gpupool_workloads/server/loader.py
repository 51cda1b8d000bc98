"""Finding and loading the model to serve: a trainer checkpoint, TorchScript, or torch.export."""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import torch
from torch import nn

from gpupool_workloads import checkpoint
from gpupool_workloads.errors import CheckpointError, ConfigError
from gpupool_workloads.models import ModelSpec, build_model

MODEL_POLL_SECONDS = 0.2


class StopSignal(Protocol):
    """``threading.Event`` or :class:`PreemptionFlag`: ``wait`` returns True once set."""

    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True, kw_only=True)
class LoadedModel:
    module: nn.Module
    name: str
    source: Path
    kind: str
    """``checkpoint``, ``torchscript`` or ``export``."""
    input_shape: tuple[int, ...] | None
    step: int | None
    """Training step of a checkpoint."""
    device: torch.device


def resolve_model_path(uri: str, *, mount_root: str) -> Path:
    """``/path``, ``file:///path`` or ``pvc://CLAIM/PATH`` (read under ``mount_root``)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri)
    if parsed.scheme == "pvc":
        return Path(mount_root) / parsed.netloc / parsed.path.lstrip("/")
    raise ConfigError(f"model URI {uri!r}: scheme {parsed.scheme!r} is not supported")


def _model_file(path: Path) -> Path | None:
    """The file to load now: ``path`` itself, or the newest checkpoint of a directory."""
    if path.is_dir():
        return checkpoint.latest_checkpoint(path)
    return path if path.is_file() else None


def wait_for_model_file(
    path: Path,
    *,
    timeout_seconds: float,
    stop: StopSignal,
    clock: Callable[[], float] = time.monotonic,
) -> Path | None:
    """Wait until the model exists (a trainer or a copy job may still be writing it).

    Returns None when ``stop`` is set first; raises ConfigError at the deadline.
    """
    deadline = clock() + timeout_seconds
    while (found := _model_file(path)) is None:
        remaining = deadline - clock()
        if remaining <= 0:
            raise ConfigError(f"no model at {path} after {timeout_seconds:.0f}s")
        if stop.wait(min(MODEL_POLL_SECONDS, remaining)):
            return None
    return found


def _archive_kind(path: Path) -> str | None:
    """``torchscript`` (torch.jit.save), ``export`` (torch.export.save) or None."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(name.endswith("/archive_format") for name in names):
        return "export"
    if any(name.endswith("/constants.pkl") for name in names):
        return "torchscript"
    return None


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def load_model(
    path: Path, *, device: torch.device, input_shape: tuple[int, ...] | None = None
) -> LoadedModel:
    """Load ``path`` onto ``device`` in eval mode."""
    kind = _archive_kind(path)
    if kind is not None:
        module: nn.Module
        if kind == "export":
            # Export the batch dimension as dynamic (torch.export.Dim) to batch requests.
            module = torch.export.load(path).module().to(device)
        else:
            module = torch.jit.load(str(path), map_location=device)  # type: ignore[no-untyped-call]
            module.eval()
        return LoadedModel(
            module=module,
            name=path.stem,
            source=path,
            kind=kind,
            input_shape=input_shape,
            step=None,
            device=device,
        )
    try:
        payload = checkpoint.read_checkpoint(path)
    except CheckpointError as error:
        raise ConfigError(
            f"{path} is neither a checkpoint nor a TorchScript or exported program: {error}"
        ) from None
    spec = ModelSpec.from_dict(payload["model"])
    module = build_model(spec)
    module.load_state_dict(payload["model_state"])
    module.to(device).eval()
    return LoadedModel(
        module=module,
        name=spec.name,
        source=path,
        kind="checkpoint",
        input_shape=spec.input_shape,
        step=int(payload["progress"]["step"]),
        device=device,
    )
