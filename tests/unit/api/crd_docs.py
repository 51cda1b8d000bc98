"""The generated CRDs as dicts, and walking their schemas."""

from __future__ import annotations

from typing import Any

from gpupool.api import RESOURCES
from gpupool.api.crdgen import crd
from gpupool.api.schema import walk

CRDS_BY_KIND: dict[str, dict[str, Any]] = {resource.kind: crd(resource) for resource in RESOURCES}


def version(kind: str) -> dict[str, Any]:
    (only,) = CRDS_BY_KIND[kind]["spec"]["versions"]
    result: dict[str, Any] = only
    return result


def root_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = version(kind)["schema"]["openAPIV3Schema"]
    return schema


def nodes(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """Every schema node of a kind with its path, e.g. ``.spec.tenants[].namespace``."""
    return walk(root_schema(kind))
