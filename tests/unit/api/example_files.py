"""The example objects in examples/ and the models that parse them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gpupool.api import API_VERSION, ApiModel, GPUPool, InferenceService, TrainingJob

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
INVALID_EXAMPLES = EXAMPLES / "invalid"
CRDS = REPO / "crds"

MODEL_OF_KIND: dict[str, type[ApiModel]] = {
    "GPUPool": GPUPool,
    "TrainingJob": TrainingJob,
    "InferenceService": InferenceService,
}


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a file, empty ones left out."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def gpupool_objects(path: Path) -> list[dict[str, Any]]:
    """The gpupool.io objects of a file (examples also hold Namespaces and PVCs)."""
    return [doc for doc in documents(path) if doc.get("apiVersion") == API_VERSION]


def valid_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def invalid_files() -> list[Path]:
    return sorted(INVALID_EXAMPLES.glob("*.yaml"))
