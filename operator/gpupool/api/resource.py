"""What the CRD of a kind says besides its schema: names, scope, columns, subresources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gpupool.api.base import ApiModel
from gpupool.api.common import GROUP, VERSION

CATEGORY = "gpupool"
"""`kubectl get gpupool` lists every gpupool kind."""


@dataclass(frozen=True)
class PrinterColumn:
    """A column of `kubectl get` (CRD additionalPrinterColumns)."""

    name: str
    json_path: str
    type: Literal["integer", "number", "string", "boolean", "date"]
    description: str
    priority: int = 0
    """0: always shown; 1: only with `-o wide`."""

    def to_crd(self) -> dict[str, object]:
        column: dict[str, object] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            column["priority"] = self.priority
        return column


AGE = PrinterColumn(
    "AGE", ".metadata.creationTimestamp", "date", "Time since the object was created."
)

PRICE = PrinterColumn(
    "PRICE", ".status.pricePerGPUHour", "number", "Credits per borrowed GPU-hour."
)
"""What a workload (TrainingJob, InferenceService) pays for borrowed GPUs."""


@dataclass(frozen=True)
class ScaleSubresource:
    """Where `kubectl scale` and the HPA read and write replica counts."""

    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str


@dataclass(frozen=True)
class Resource:
    """One gpupool kind: enough to generate its CRD and to register kopf handlers."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    namespaced: bool
    description: str
    spec_model: type[ApiModel]
    status_model: type[ApiModel]
    printer_columns: tuple[PrinterColumn, ...]
    scale: ScaleSubresource | None = None
    categories: tuple[str, ...] = (CATEGORY,)
    group: str = GROUP
    version: str = VERSION

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"
