"""``gpupool-agent`` NVML mode end to end in-process, with NVML faked at our boundary."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from gpupool.scheduling.model import NodeName
from gpupool.telemetry import agent
from gpupool.telemetry.annotations import parse_node_telemetry
from gpupool.telemetry.model import TelemetryUnavailable
from gpupool.telemetry.nvml_fake import FakeNvml, hgx_gpus
from gpupool.telemetry.nvml_source import NVMLSource


def test_dry_run_once_prints_the_nodes_annotations(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[NodeName] = []
    real_start = NVMLSource.start

    def start(*, node: NodeName, nvml: Any = None) -> NVMLSource:
        started.append(node)
        return real_start(node=node, nvml=FakeNvml(hgx_gpus(4)).module())

    monkeypatch.setattr(agent.NVMLSource, "start", start)
    code = agent.main(["--node-name", "gpu-7", "--dry-run", "--once", "--metrics-port", "0"])
    assert code == 0
    assert started == ["gpu-7"]
    (line,) = capsys.readouterr().out.splitlines()
    written = json.loads(line)
    assert written["node"] == "gpu-7"
    report = parse_node_telemetry(written["annotations"])
    assert report is not None and len(report.gpus) == 4 and report.source == "nvml"


def test_missing_driver_is_one_clear_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def start(*, node: NodeName, nvml: Any = None) -> NVMLSource:
        raise TelemetryUnavailable("NVML library not found: NVML Shared Library Not Found")

    monkeypatch.setattr(agent.NVMLSource, "start", start)
    with caplog.at_level(logging.ERROR):
        code = agent.main(["--dry-run", "--once", "--metrics-port", "0"])
    assert code == 2
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [record.getMessage() for record in errors] == [
        "GPU telemetry unavailable: NVML library not found: NVML Shared Library Not Found"
    ]
    assert all(record.exc_info is None for record in errors)
