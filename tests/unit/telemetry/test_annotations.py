from __future__ import annotations

import json

import pytest

from gpupool.telemetry.annotations import (
    ANNOTATION_HEARTBEAT,
    ANNOTATION_TELEMETRY,
    encode_node_telemetry,
    explain_missing_telemetry,
    parse_node_telemetry,
)
from gpupool.telemetry.model import GPUTelemetry, GpuUuid

from .builders import gpu, node, with_gpu


def test_round_trip_keeps_every_field() -> None:
    report = with_gpu(node(timestamp=1732280000.123, gpus=8), 3, xid_history=(13, 79))
    report = with_gpu(report, 5, model="NVIDIA A100-SXM4-40GB", nvlink_domain=None)
    parsed = parse_node_telemetry(encode_node_telemetry(report))
    assert parsed == report


def test_unknown_values_stay_unknown_and_lost_round_trips() -> None:
    lost = GPUTelemetry(index=2, uuid=GpuUuid("GPU-x"), model="m", lost=True, xid_events=(79,))
    report = node(gpus=0)
    report = type(report)(node=report.node, timestamp=5.0, gpus=(lost,), source="nvml")
    parsed = parse_node_telemetry(encode_node_telemetry(report))
    assert parsed is not None
    (only,) = parsed.gpus
    assert only.lost is True
    assert only.xid_history == (79,)  # events since last read are published as history
    assert (only.memory_free_mib, only.temperature_c, only.ecc_volatile_uncorrected) == (
        None,
        None,
        None,
    )


def test_annotation_is_compact_and_heartbeat_is_rfc3339() -> None:
    annotations = encode_node_telemetry(node(timestamp=1732280000.5, gpus=8))
    assert len(annotations[ANNOTATION_TELEMETRY]) < 1600
    assert ", " not in annotations[ANNOTATION_TELEMETRY]
    assert '": ' not in annotations[ANNOTATION_TELEMETRY]
    assert annotations[ANNOTATION_HEARTBEAT] == "2024-11-22T12:53:20.500Z"


def test_later_heartbeat_refreshes_the_timestamp() -> None:
    annotations = encode_node_telemetry(node(timestamp=1732280000.0))
    annotations[ANNOTATION_HEARTBEAT] = "2024-11-22T12:54:00.000Z"
    parsed = parse_node_telemetry(annotations)
    assert parsed is not None and parsed.timestamp == 1732280040.0


@pytest.mark.parametrize(
    ("annotations", "why"),
    [
        ({}, "no gpupool.io/telemetry annotation"),
        ({ANNOTATION_TELEMETRY: "{"}, "is not JSON"),
        ({ANNOTATION_TELEMETRY: "[]"}, "is not a JSON object"),
        ({ANNOTATION_TELEMETRY: json.dumps({"v": 2})}, "schema version 2 is not supported"),
        ({ANNOTATION_TELEMETRY: json.dumps({"v": 1, "ts": 1})}, "malformed: KeyError"),
        (
            {ANNOTATION_TELEMETRY: json.dumps({"v": 1, "ts": 1, "node": "n", "gpus": [{}]})},
            "malformed",
        ),
        (
            {ANNOTATION_TELEMETRY: json.dumps({"v": 1, "ts": 1, "node": "n", "gpus": [3]})},
            "malformed",
        ),
    ],
)
def test_unreadable_annotations_parse_to_none_with_a_reason(
    annotations: dict[str, str], why: str
) -> None:
    assert parse_node_telemetry(annotations) is None
    assert why in explain_missing_telemetry(annotations)


def test_bad_heartbeat_is_ignored() -> None:
    annotations = encode_node_telemetry(node(timestamp=10.0))
    annotations[ANNOTATION_HEARTBEAT] = "yesterday"
    parsed = parse_node_telemetry(annotations)
    assert parsed is not None and parsed.timestamp == 10.0
    assert explain_missing_telemetry(annotations) == ""


def test_gpu_builder_sanity() -> None:
    assert gpu(1).index == 1
