"""Trace reading: valid files, and bad input that names the row (never a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpupool.scheduling import Tier, WorkloadKind
from gpupool.sim.cli import main
from gpupool.sim.trace import TraceError, gang_shape, parse_trace, split_placeable

HEADER = "job_id,submit_s,duration_s,gpus,tenant,priority,kind\n"


def parse(text: str, **kwargs: bool) -> list[str]:
    return [job.job_id for job in parse_trace(text.splitlines(True), **kwargs).jobs]


def test_reads_rows_in_submission_order_with_typed_fields() -> None:
    trace = parse_trace(
        (HEADER + "b,20,60,2,t1,high,training\na,10,30,0.5,t2,low,inference\n").splitlines(True)
    )
    assert [job.job_id for job in trace.jobs] == ["a", "b"]
    a, b = trace.jobs
    assert (a.gpus, a.tier, a.kind, a.line) == (0.5, Tier.LOW, WorkloadKind.INFERENCE, 3)
    assert (b.submit_s, b.duration_s, b.tenant, b.tier) == (20.0, 60.0, "t1", Tier.HIGH)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("x,1,10,-3,t,normal,training", "gpus must be positive"),
        ("x,1,10,0,t,normal,training", "gpus must be positive"),
        ("x,1,10,0.5,t,normal,training", "only allowed for inference"),
        ("x,1,10,2.5,t,normal,training", "must be whole"),
        ("x,one,10,1,t,normal,training", "submit_s is not a number"),
        ("x,1,0,1,t,normal,training", "duration_s must be > 0"),
        ("x,1,10,1,t,urgent,training", "unknown priority class"),
        ("x,1,10,1,t,normal,batch", "kind must be training or inference"),
        ("x,1,10,1", "expected 7 columns"),
        ("x,1,nan,1,t,normal,training", "must be finite"),
    ],
)
def test_bad_row_raises_an_error_naming_the_line(row: str, message: str) -> None:
    text = HEADER + "ok,0,10,1,t,normal,training\n" + row + "\n"
    with pytest.raises(TraceError) as caught:
        parse_trace(text.splitlines(True), name="jobs.csv")
    assert str(caught.value).startswith("jobs.csv:3: ")
    assert message in str(caught.value)


def test_bad_rows_can_be_skipped_and_counted() -> None:
    text = (
        HEADER
        + "a,0,10,1,t,normal,training\n"
        + "b,1,10,-1,t,normal,training\n"
        + "c,2,5,1,t,low,training\n"
    )
    trace = parse_trace(text.splitlines(True), strict=False)
    assert [job.job_id for job in trace.jobs] == ["a", "c"]
    assert trace.skipped == 1


def test_missing_columns_and_duplicates_are_errors() -> None:
    with pytest.raises(TraceError, match="lacks column"):
        parse_trace(["job_id,submit_s\n", "a,1\n"])
    with pytest.raises(TraceError, match="duplicate job_id"):
        parse(HEADER + "a,0,1,1,t,normal,training\na,1,1,1,t,normal,training\n")


@pytest.mark.parametrize(
    ("gpus", "per_node", "shape"),
    [(1, 8, (1, 1)), (8, 8, (1, 8)), (16, 8, (2, 8)), (12, 8, (2, 6)), (20, 8, (4, 5))],
)
def test_gang_shape_splits_big_jobs_into_equal_node_sized_replicas(
    gpus: int, per_node: int, shape: tuple[int, int]
) -> None:
    assert gang_shape(gpus, per_node) == shape


def test_jobs_larger_than_the_pool_are_split_off() -> None:
    text = HEADER + "a,0,1,4,t,normal,training\nb,0,1,64,t,normal,training\n"
    trace = parse_trace(text.splitlines(True))
    fits, too_large = split_placeable(trace.jobs, nodes=2, gpus_per_node=8)
    assert [job.job_id for job in fits] == ["a"]
    assert [job.job_id for job in too_large] == ["b"]


def test_cli_reports_a_bad_row_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text(HEADER + "a,0,10,1,t,normal,training\nb,5,10,-2,t,normal,training\n")
    assert main(["--trace", str(trace), "--json", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{trace}:3: gpus must be positive" in err
    assert "Traceback" not in err


def test_cli_reports_a_missing_file_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--trace", str(tmp_path / "nope.csv"), "--quiet"]) == 2
    assert "cannot open" in capsys.readouterr().err
