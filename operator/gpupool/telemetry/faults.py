"""Scripted GPU faults for the simulated telemetry source.

A fault script is a YAML or JSON list (or a mapping with a ``faults:`` list);
each entry names a time, a node and a GPU, and a ``kind``::

    faults:
      - {at_s: 30, node: gpu-node-001, gpu: 3, kind: xid, xid: 79}
      - {at_s: 60, node: gpu-node-002, gpu: 0, kind: temperature_ramp, to_c: 97, over_s: 120}
      - {at_s: 90, node: gpu-node-003, gpu: 5, kind: lost}
      - {at_s: 10, node: gpu-node-000, gpu: 1, kind: ecc, uncorrected: 2, corrected: 10}

``at_s`` is seconds after the simulated source started (``0`` = at the next
read, which is what a test injecting a fault "now" wants). Faults are sticky
from their time on: a lost GPU stays lost, ECC errors stay counted, an XID is
reported once as an event and stays in the GPU's history. Identical entries
count once.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpupool.scheduling.model import NodeName


class FaultKind(enum.StrEnum):
    XID = "xid"
    TEMPERATURE_RAMP = "temperature_ramp"
    LOST = "lost"
    ECC = "ecc"


class FaultScriptError(ValueError):
    """A fault script that cannot be understood (the message names the entry)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One scripted event on one GPU; which fields matter depends on ``kind``."""

    at_s: float
    node: NodeName
    gpu: int
    kind: FaultKind
    xid: int = 0
    """``xid``: the XID code reported."""
    to_c: float = 0.0
    """``temperature_ramp``: the temperature reached at the end of the ramp."""
    over_s: float = 0.0
    """``temperature_ramp``: seconds the ramp takes (0 = a jump)."""
    corrected: int = 0
    """``ecc``: corrected errors added to the volatile counter."""
    uncorrected: int = 0
    """``ecc``: uncorrected errors added to the volatile counter."""


@dataclass(frozen=True, slots=True)
class FaultScript:
    faults: tuple[Fault, ...] = ()

    def plus(self, fault: Fault) -> FaultScript:
        return FaultScript((*self.faults, fault))


_ALLOWED: Mapping[FaultKind, frozenset[str]] = {
    FaultKind.XID: frozenset({"xid"}),
    FaultKind.TEMPERATURE_RAMP: frozenset({"to_c", "over_s"}),
    FaultKind.LOST: frozenset(),
    FaultKind.ECC: frozenset({"corrected", "uncorrected"}),
}
_REQUIRED: Mapping[FaultKind, frozenset[str]] = {
    FaultKind.XID: frozenset({"xid"}),
    FaultKind.TEMPERATURE_RAMP: frozenset({"to_c"}),
    FaultKind.LOST: frozenset(),
    FaultKind.ECC: frozenset(),
}
_COMMON = frozenset({"at_s", "node", "gpu", "kind"})


def parse_fault_script(text: str) -> FaultScript:
    """A script from YAML or JSON text; :class:`FaultScriptError` says what is wrong."""
    try:
        document = yaml.safe_load(text) if text.strip() else []
    except yaml.YAMLError as error:
        raise FaultScriptError(f"fault script is not YAML/JSON: {error}") from None
    if isinstance(document, Mapping):
        document = document.get("faults", [])
    if not isinstance(document, list):
        raise FaultScriptError("fault script must be a list of faults or {faults: [...]}")
    return FaultScript(
        tuple(_parse_entry(position, entry) for position, entry in enumerate(document))
    )


def load_fault_script(path: Path) -> FaultScript:
    """Read and parse a fault file (a missing file is an empty script)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return FaultScript()
    return parse_fault_script(text)


def dump_fault_script(faults: Iterable[Fault]) -> str:
    """JSON text :func:`parse_fault_script` reads back (for tests writing fault files)."""
    entries = []
    for fault in faults:
        entry: dict[str, Any] = {
            "at_s": fault.at_s,
            "node": fault.node,
            "gpu": fault.gpu,
            "kind": fault.kind.value,
        }
        for name in sorted(_ALLOWED[fault.kind]):
            entry[name] = getattr(fault, name)
        entries.append(entry)
    return json.dumps({"faults": entries}, indent=1)


def _parse_entry(position: int, entry: object) -> Fault:
    where = f"fault #{position}"
    if not isinstance(entry, Mapping):
        raise FaultScriptError(f"{where}: expected a mapping, got {entry!r}")
    missing = sorted(_COMMON - set(entry))
    if missing:
        raise FaultScriptError(f"{where}: missing {', '.join(missing)}")
    try:
        kind = FaultKind(str(entry["kind"]))
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise FaultScriptError(
            f"{where}: unknown kind {entry['kind']!r} (one of {known})"
        ) from None
    unknown = sorted(set(entry) - _COMMON - _ALLOWED[kind])
    if unknown:
        raise FaultScriptError(f"{where}: {kind.value} does not take {', '.join(unknown)}")
    needed = sorted(_REQUIRED[kind] - set(entry))
    if needed:
        raise FaultScriptError(f"{where}: {kind.value} needs {', '.join(needed)}")
    try:
        fault = Fault(
            at_s=float(entry["at_s"]),
            node=NodeName(str(entry["node"])),
            gpu=int(entry["gpu"]),
            kind=kind,
            xid=int(entry.get("xid", 0)),
            to_c=float(entry.get("to_c", 0.0)),
            over_s=float(entry.get("over_s", 0.0)),
            corrected=int(entry.get("corrected", 0)),
            uncorrected=int(entry.get("uncorrected", 0)),
        )
    except (TypeError, ValueError) as error:
        raise FaultScriptError(f"{where}: {error}") from None
    problem = _problem(fault)
    if problem:
        raise FaultScriptError(f"{where}: {problem}")
    return fault


def _problem(fault: Fault) -> str:
    if fault.at_s < 0 or fault.gpu < 0 or fault.over_s < 0:
        return "at_s, gpu and over_s must not be negative"
    if fault.kind is FaultKind.XID and fault.xid <= 0:
        return "xid needs a positive xid code"
    if fault.corrected < 0 or fault.uncorrected < 0:
        return "ecc counts must not be negative"
    return ""
