"""The host reference: fixed work (pinned by its checksum), and figures in units of it."""

from __future__ import annotations

import pytest

from gpupool.sim import host_reference
from gpupool.sim.bench import host_figures
from gpupool.sim.report import host_line


def test_workload_is_the_pinned_one() -> None:
    # Editing the workload breaks comparisons with every figure taken before: this fails.
    assert host_reference.workload() == host_reference.CHECKSUM
    assert host_reference.workload(1000) != host_reference.CHECKSUM


def test_reference_seconds_is_positive_and_checks_the_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert 0 < host_reference.reference_seconds(repeats=1) < 60
    monkeypatch.setattr(host_reference, "workload", lambda: 1)
    with pytest.raises(RuntimeError, match="expected 736415"):
        host_reference.reference_seconds(repeats=1)


def test_bench_figures_in_units_of_the_reference() -> None:
    figures = host_figures({"p50_cycle_ms": 150.0, "replay_wall_s": 2.0}, 0.1)
    assert figures == {
        "host_reference_ms": 100.0,
        "p50_cycle_per_reference": 1.5,
        "replay_wall_per_reference": 20.0,
    }
    assert host_figures({}, 0.1) == {"host_reference_ms": 100.0}


def test_page_line_gives_each_replay_in_units_of_the_reference() -> None:
    line = host_line(
        [{"policy": "fifo", "sim_wall_s": 42.0}, {"policy": "gpupool", "sim_wall_s": 8.4}], 0.084
    )
    assert line.endswith("84.0 ms. Sim wall in units of it: fifo 500, gpupool 100.")
