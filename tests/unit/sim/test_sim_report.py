"""The results page generator: replays in worker processes give the same page data."""

from __future__ import annotations

import json
from pathlib import Path

from gpupool.sim.bench import synthetic_trace
from gpupool.sim.report import BEGIN, END, main

HEADER = "job_id,submit_s,duration_s,gpus,tenant,priority,kind\n"


def _trace(path: Path) -> Path:
    jobs = synthetic_trace(120, seed=3, gpus=16)
    path.write_text(
        HEADER
        + "".join(
            f"{j.job_id},{j.submit_s},{j.duration_s},{j.gpus:g},{j.tenant},normal,training\n"
            for j in jobs
        ),
        encoding="utf-8",
    )
    return path


def _figures(out: Path) -> list[dict[str, object]]:
    rows = [
        json.loads(line)
        for line in (out / "scheduling-results.json").read_text().split("\n")
        if line
    ]
    for row in rows:
        row.pop("sim_wall_s")
        row.pop("cycle_wall_s")
    return rows


def test_report_writes_table_plot_and_json_and_parallel_runs_agree(tmp_path: Path) -> None:
    trace = _trace(tmp_path / "t.csv")
    common = ["--trace", str(trace), "--nodes", "2", "--gpus-per-node", "8"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*common, "--out", str(one), "--policies", "fifo,gpupool"]) == 0
    assert main([*common, "--out", str(two), "--policies", "fifo,gpupool", "--jobs", "2"]) == 0
    assert [row["policy"] for row in _figures(one)] == ["fifo", "gpupool"]
    assert _figures(one) == _figures(two)
    page = (one / "scheduling-results.md").read_text()
    assert BEGIN in page and END in page and "| gpupool |" in page
    host = next(line for line in page.splitlines() if line.startswith("Host reference"))
    assert "fifo " in host and "gpupool " in host
    assert (one / "img" / "scheduling-jct-cdf.png").stat().st_size > 1000
    assert not list(one.glob(".jct-*"))
