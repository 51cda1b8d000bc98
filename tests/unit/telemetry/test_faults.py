from __future__ import annotations

from pathlib import Path

import pytest

from gpupool.scheduling.model import NodeName
from gpupool.telemetry.faults import (
    Fault,
    FaultKind,
    FaultScript,
    FaultScriptError,
    dump_fault_script,
    load_fault_script,
    parse_fault_script,
)

YAML = """
faults:
  - {at_s: 30, node: gpu-node-001, gpu: 3, kind: xid, xid: 79}
  - {at_s: 60, node: gpu-node-002, gpu: 0, kind: temperature_ramp, to_c: 97, over_s: 120}
  - {at_s: 90, node: gpu-node-003, gpu: 5, kind: lost}
  - {at_s: 10, node: gpu-node-000, gpu: 1, kind: ecc, uncorrected: 2}
"""


def test_parses_every_kind_from_yaml() -> None:
    script = parse_fault_script(YAML)
    assert script.faults == (
        Fault(at_s=30, node=NodeName("gpu-node-001"), gpu=3, kind=FaultKind.XID, xid=79),
        Fault(
            at_s=60,
            node=NodeName("gpu-node-002"),
            gpu=0,
            kind=FaultKind.TEMPERATURE_RAMP,
            to_c=97,
            over_s=120,
        ),
        Fault(at_s=90, node=NodeName("gpu-node-003"), gpu=5, kind=FaultKind.LOST),
        Fault(at_s=10, node=NodeName("gpu-node-000"), gpu=1, kind=FaultKind.ECC, uncorrected=2),
    )


def test_json_round_trip_and_bare_list() -> None:
    script = parse_fault_script(YAML)
    assert parse_fault_script(dump_fault_script(script.faults)) == script
    assert (
        parse_fault_script('[{"at_s": 0, "node": "n", "gpu": 0, "kind": "lost"}]').faults[0].kind
        is FaultKind.LOST
    )


def test_empty_and_missing_file_are_empty_scripts(tmp_path: Path) -> None:
    assert parse_fault_script("") == FaultScript()
    assert load_fault_script(tmp_path / "absent.yaml") == FaultScript()
    (tmp_path / "f.yaml").write_text(YAML)
    assert len(load_fault_script(tmp_path / "f.yaml").faults) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{faults: 3}", "must be a list"),
        ("[1]", "fault #0: expected a mapping"),
        ("[{at_s: 0, node: n, gpu: 0}]", "fault #0: missing kind"),
        ("[{at_s: 0, node: n, gpu: 0, kind: fire}]", "unknown kind 'fire'"),
        ("[{at_s: 0, node: n, gpu: 0, kind: xid}]", "xid needs xid"),
        ("[{at_s: 0, node: n, gpu: 0, kind: lost, xid: 3}]", "lost does not take xid"),
        ("[{at_s: 0, node: n, gpu: 0, kind: temperature_ramp}]", "needs to_c"),
        ("[{at_s: -1, node: n, gpu: 0, kind: lost}]", "must not be negative"),
        ("[{at_s: soon, node: n, gpu: 0, kind: lost}]", "fault #0"),
        ("[{at_s: 0, node: n, gpu: 0, kind: ecc, uncorrected: -2}]", "must not be negative"),
        ("{", "not YAML/JSON"),
    ],
)
def test_bad_scripts_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FaultScriptError, match=message):
        parse_fault_script(text)
