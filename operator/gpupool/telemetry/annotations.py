"""Node telemetry as Node annotations: the agent encodes, the operator parses (both pure).

Two annotations on each GPU Node, always written together by one merge patch:

``gpupool.io/telemetry``
    compact JSON, schema version 1::

        {"v": 1, "node": "gpu-node-001", "ts": 1732280000.123, "src": "nvml",
         "model": "NVIDIA H100 80GB HBM3",
         "gpus": [{"i": 0, "uuid": "GPU-...", "mem": [81559, 1200, 80359],
                   "util": 97.0, "temp": 71.0, "pw": 612.5, "thr": 0, "ecc": [0, 0],
                   "xid": [79], "nvl": [1, 2, 3], "dom": 0, "lost": true}]}

    ``mem`` is [total, used, free] MiB, ``ecc`` [volatile corrected,
    uncorrected], ``xid`` the GPU's XID history (distinct codes seen since the
    agent started), ``nvl`` NVLink peers, ``dom`` NVLink domain. A key whose
    value is unknown (``None``) is left out, as are ``lost: false``, empty
    lists and a ``model`` equal to the node-level one. 8 GPUs take ~1.3 KB.

``gpupool.io/telemetry-heartbeat``
    the same instant as RFC 3339 UTC (``2024-11-22T12:53:20.123Z``), readable in
    ``kubectl describe node``. If it is later than ``ts`` (a heartbeat written
    without new values), the parsed report's ``timestamp`` is the heartbeat.

A newer schema version is not guessed at: :func:`parse_node_telemetry` returns
``None`` and :func:`explain_missing_telemetry` says why.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gpupool.k8s import names
from gpupool.scheduling.model import NodeName
from gpupool.telemetry.model import GPUTelemetry, GpuUuid, NodeTelemetry

SCHEMA_VERSION = 1
ANNOTATION_TELEMETRY = names.ANNOTATION_TELEMETRY
ANNOTATION_HEARTBEAT = f"{names.GROUP}/telemetry-heartbeat"


class TelemetryDecodeError(ValueError):
    """The annotation exists but cannot be read (the message says why)."""


# ------------------------------------------------------------------- encode


def encode_node_telemetry(telemetry: NodeTelemetry) -> dict[str, str]:
    """The two annotations (name -> value) that publish ``telemetry``."""
    node_model = telemetry.gpus[0].model if telemetry.gpus else ""
    document: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "node": telemetry.node,
        "ts": round(telemetry.timestamp, 3),
        "src": telemetry.source,
        "model": node_model,
        "gpus": [_encode_gpu(gpu, node_model) for gpu in telemetry.gpus],
    }
    return {
        ANNOTATION_TELEMETRY: json.dumps(document, separators=(",", ":")),
        ANNOTATION_HEARTBEAT: format_heartbeat(telemetry.timestamp),
    }


def _encode_gpu(gpu: GPUTelemetry, node_model: str) -> dict[str, Any]:
    encoded: dict[str, Any] = {"i": gpu.index, "uuid": gpu.uuid}
    if gpu.model != node_model:
        encoded["model"] = gpu.model
    memory = (gpu.memory_total_mib, gpu.memory_used_mib, gpu.memory_free_mib)
    if None not in memory:
        encoded["mem"] = list(memory)
    optional = {
        "util": gpu.sm_utilization_pct,
        "temp": gpu.temperature_c,
        "pw": gpu.power_w,
        "thr": gpu.clocks_throttle_reasons,
    }
    encoded.update({key: value for key, value in optional.items() if value is not None})
    if gpu.ecc_volatile_corrected is not None and gpu.ecc_volatile_uncorrected is not None:
        encoded["ecc"] = [gpu.ecc_volatile_corrected, gpu.ecc_volatile_uncorrected]
    history = sorted(set(gpu.xid_history).union(gpu.xid_events))
    if history:
        encoded["xid"] = history
    if gpu.nvlink_peers:
        encoded["nvl"] = list(gpu.nvlink_peers)
    if gpu.nvlink_domain is not None:
        encoded["dom"] = gpu.nvlink_domain
    if gpu.lost:
        encoded["lost"] = True
    return encoded


def format_heartbeat(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_heartbeat(text: str) -> float:
    """Seconds since the epoch from an RFC 3339 time; ``ValueError`` if it is not one."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# -------------------------------------------------------------------- parse


def parse_node_telemetry(annotations: Mapping[str, str]) -> NodeTelemetry | None:
    """The node's last published report, or ``None`` when absent or unreadable.

    Pass ``node.metadata.annotations`` (``None`` from the API -> pass ``{}``).
    Never raises: a broken annotation means "no usable telemetry", and
    :func:`explain_missing_telemetry` gives the reason to show.
    """
    try:
        return decode_node_telemetry(annotations)
    except TelemetryDecodeError:
        return None


def explain_missing_telemetry(annotations: Mapping[str, str]) -> str:
    """Why :func:`parse_node_telemetry` returned ``None`` (``""`` when it did not)."""
    try:
        decode_node_telemetry(annotations)
    except TelemetryDecodeError as error:
        return str(error)
    return ""


def decode_node_telemetry(annotations: Mapping[str, str]) -> NodeTelemetry:
    """Like :func:`parse_node_telemetry` but raises :class:`TelemetryDecodeError`."""
    raw = annotations.get(ANNOTATION_TELEMETRY)
    if raw is None:
        raise TelemetryDecodeError(
            f"no {ANNOTATION_TELEMETRY} annotation (is gpupool-agent running on the node?)"
        )
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise TelemetryDecodeError(f"{ANNOTATION_TELEMETRY} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise TelemetryDecodeError(f"{ANNOTATION_TELEMETRY} is not a JSON object")
    version = document.get("v")
    if version != SCHEMA_VERSION:
        raise TelemetryDecodeError(
            f"{ANNOTATION_TELEMETRY} schema version {version!r} is not supported"
            f" (this operator reads version {SCHEMA_VERSION})"
        )
    try:
        timestamp = float(document["ts"])
        node_model = str(document.get("model", ""))
        gpus = tuple(_decode_gpu(entry, node_model) for entry in document["gpus"])
        node = NodeName(str(document["node"]))
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise TelemetryDecodeError(
            f"{ANNOTATION_TELEMETRY} is malformed: {type(error).__name__}: {error}"
        ) from None
    heartbeat = annotations.get(ANNOTATION_HEARTBEAT)
    if heartbeat:
        with contextlib.suppress(ValueError):  # a bad heartbeat: the JSON timestamp stands
            timestamp = max(timestamp, parse_heartbeat(heartbeat))
    return NodeTelemetry(
        node=node, timestamp=timestamp, gpus=gpus, source=str(document.get("src", ""))
    )


def _decode_gpu(entry: Mapping[str, Any], node_model: str) -> GPUTelemetry:
    memory = entry.get("mem")
    total, used, free = (int(value) for value in memory) if memory else (None, None, None)
    ecc = entry.get("ecc")
    corrected, uncorrected = (int(value) for value in ecc) if ecc else (None, None)
    domain = entry.get("dom")
    return GPUTelemetry(
        index=int(entry["i"]),
        uuid=GpuUuid(str(entry["uuid"])),
        model=str(entry.get("model", node_model)),
        memory_total_mib=total,
        memory_used_mib=used,
        memory_free_mib=free,
        sm_utilization_pct=_optional_float(entry.get("util")),
        temperature_c=_optional_float(entry.get("temp")),
        power_w=_optional_float(entry.get("pw")),
        clocks_throttle_reasons=None if entry.get("thr") is None else int(entry["thr"]),
        ecc_volatile_corrected=corrected,
        ecc_volatile_uncorrected=uncorrected,
        xid_history=tuple(int(xid) for xid in entry.get("xid", ())),
        nvlink_peers=tuple(int(peer) for peer in entry.get("nvl", ())),
        nvlink_domain=None if domain is None else int(domain),
        lost=bool(entry.get("lost", False)),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
