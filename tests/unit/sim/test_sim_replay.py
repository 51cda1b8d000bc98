"""End-to-end replays of small traces through every policy."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gpupool.scheduling import Decisions, PoolConfig, Snapshot, TenantName
from gpupool.sim.cli import main
from gpupool.sim.engine import SimConfig, Simulator
from gpupool.sim.metrics import percentile, summarize
from gpupool.sim.policies import POLICY_NAMES, RunCyclePolicy, make_policy
from gpupool.sim.tenants import TenantsError, budget_tenants, default_tenants, load_tenants
from gpupool.sim.trace import parse_trace

HEADER = "job_id,submit_s,duration_s,gpus,tenant,priority,kind\n"
REQUIRED_KEYS = {
    "policy",
    "jobs",
    "gpus",
    "avg_jct_s",
    "p50_jct_s",
    "p95_jct_s",
    "p99_jct_s",
    "avg_wait_s",
    "makespan_s",
    "utilization",
    "worst_ftf",
    "pct_ftf_over_1_05",
    "preemptions_per_job",
    "unallocatable_idle_gpu_fraction",
    "sim_wall_s",
}


def small_trace() -> str:
    rows = []
    for i in range(40):
        gpus = [1, 1, 2, 4, 8][i % 5]
        duration = [30, 600, 3600, 120, 7200][(i * 3) % 5]
        tier = ["normal", "high", "low"][i % 3]
        kind = "inference" if i % 11 == 0 else "training"
        gpus_text = "0.5" if kind == "inference" else str(gpus)
        rows.append(f"j{i:03d},{i * 45},{duration},{gpus_text},t{i % 3},{tier},{kind}\n")
    return HEADER + "".join(rows)


def replay(policy: str, text: str, *, nodes: int = 2) -> dict[str, object]:
    jobs = parse_trace(text.splitlines(True)).jobs
    tenants = default_tenants({job.tenant for job in jobs}, total_gpus=nodes * 8)
    simulator = Simulator(
        jobs,
        policy=make_policy(
            policy, config=PoolConfig(), durations={job.job_id: job.duration_s for job in jobs}
        ),
        tenants=tenants,
        config=SimConfig(nodes=nodes, gpus_per_node=8),
    )
    return summarize(simulator.run(), policy=policy)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_every_policy_finishes_every_job_with_sane_figures(policy: str) -> None:
    summary = replay(policy, small_trace())
    assert set(summary) >= REQUIRED_KEYS
    assert summary["jobs"] == summary["finished"] == 40
    assert 0.0 < float(summary["utilization"]) <= 1.0  # type: ignore[arg-type]
    assert float(summary["worst_ftf"]) >= 1.0  # type: ignore[arg-type]
    assert float(summary["avg_jct_s"]) >= 30.0  # type: ignore[arg-type]
    if policy in ("fifo", "sjf", "drf"):
        assert summary["preemptions_per_job"] == 0.0


def test_an_idle_pool_runs_each_job_for_exactly_its_duration() -> None:
    text = HEADER + "a,0,100,1,t,normal,training\nb,1000,50,8,t,normal,training\n"
    summary = replay("gpupool", text)
    # Each job starts at its first cycle (on arrival) and runs its duration.
    assert summary["avg_jct_s"] == 75.0
    assert summary["worst_ftf"] == 1.0
    assert summary["makespan_s"] == 1050.0


def test_fifo_runs_in_arrival_order_and_sjf_runs_short_jobs_first() -> None:
    text = (
        HEADER
        + "hog,0,1000,8,t,normal,training\n"
        + "long,10,500,8,t,normal,training\n"
        + "short,20,10,8,t,normal,training\n"
    )
    fifo = replay("fifo", text, nodes=1)
    sjf = replay("sjf", text, nodes=1)
    # fifo: long runs 1000-1500, short 1500-1510.
    assert fifo["avg_jct_s"] == pytest.approx((1000 + 1490 + 1490) / 3, abs=1)
    # sjf: short runs 1000-1010; the next cycle is coalesced to 1060 (60 s after the
    # one at 1000), so long runs 1060-1560.
    assert sjf["avg_jct_s"] == pytest.approx((1000 + 990 + 1550) / 3, abs=1)


def test_higher_tier_preempts_and_the_victim_resumes_without_losing_work() -> None:
    text = HEADER + "low,0,1000,8,t,low,training\nhigh,400,100,8,t,high,training\n"
    jobs = parse_trace(text.splitlines(True)).jobs
    simulator = Simulator(
        jobs,
        policy=make_policy("gpupool", config=PoolConfig(), durations={}),
        tenants=default_tenants({"t"}, total_gpus=8),
        config=SimConfig(nodes=1, gpus_per_node=8, restart_overhead_s=30),
    )
    outcome = simulator.run()
    records = {r.job.job_id: r for r in outcome.records}
    assert records["low"].preemptions == 1
    grace = PoolConfig().grace_period_s
    # high waits out the grace period, runs 100 s; low resumes with 30 s of restart.
    assert records["high"].finish == 400 + grace + 100
    assert records["low"].finish == 400 + grace + 100 + (1000 - 400 - grace) + 30


@dataclass(frozen=True)
class _WithoutChanges:
    """``gpupool`` given every snapshot without its changes (indexed whole each cycle)."""

    inner: RunCyclePolicy
    name: str = "gpupool"
    preemptive: bool = True
    time_dependent: bool = True
    uses_tiers: bool = True
    uses_guarantees_and_credits: bool = True

    def decide(self, snapshot: Snapshot) -> Decisions:
        assert snapshot.changes is not None or snapshot.now == 0.0
        return self.inner.decide(replace(snapshot, changes=None))


def test_the_changes_the_simulator_lists_decide_what_whole_snapshots_decide() -> None:
    text = small_trace() + "".join(
        f"x{i:03d},{60 * i + 7},{[90, 4000, 700][i % 3]},{[1, 2, 8][i % 3]},t{i % 2},"
        f"{['low', 'normal'][i % 2]},training\n"
        for i in range(60)
    )
    jobs = parse_trace(text.splitlines(True)).jobs
    tenants = default_tenants({job.tenant for job in jobs}, total_gpus=16)
    outcomes = []
    for policy in (RunCyclePolicy(PoolConfig()), _WithoutChanges(RunCyclePolicy(PoolConfig()))):
        simulator = Simulator(
            jobs, policy=policy, tenants=tenants, config=SimConfig(nodes=2, gpus_per_node=8)
        )
        outcome = simulator.run()
        outcomes.append(
            [(r.job.job_id, r.first_start, r.finish, r.preemptions) for r in outcome.records]
        )
    assert outcomes[0] == outcomes[1]
    assert sum(preemptions for *_, preemptions in outcomes[0]) > 0


def test_cli_prints_one_json_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "jobs.csv"
    trace.write_text(small_trace())
    jct = tmp_path / "jct.txt"
    code = main(
        [
            *("--trace", str(trace), "--policy", "las", "--nodes", "2"),
            *("--json", "--quiet", "--jct-out", str(jct)),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    summary = json.loads(out[0])
    assert set(summary) >= REQUIRED_KEYS
    assert summary["policy"] == "las"
    assert len(jct.read_text().splitlines()) == 40


def test_cli_skips_jobs_larger_than_the_pool_and_counts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "jobs.csv"
    trace.write_text(HEADER + "a,0,10,1,t,normal,training\nhuge,1,10,64,t,normal,training\n")
    assert main(["--trace", str(trace), "--nodes", "1", "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["skipped_too_large"] == 1
    assert summary["jobs"] == 1
    assert "huge needs 64 GPUs" in captured.err


def test_tenants_file_sets_terms_and_fills_in_missing_tenants(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(
        "tenants:\n"
        "  - namespace: a\n    guaranteedGPUs: 8\n    maxGPUs: 16\n    weight: 2\n"
        "    credits: {perHour: 10, max: 100}\n"
    )
    tenants = load_tenants(path, trace_tenants={"a", "b"}, total_gpus=32)
    a = tenants[TenantName("a")]
    assert (a.guaranteed_gpus, a.max_gpus, a.weight, a.credit_balance) == (8, 16, 2.0, 100.0)
    assert tenants[TenantName("b")].guaranteed_gpus == 0


def test_bad_tenants_file_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants:\n  - namespace: a\n    guaranteedGPUs: -4\n")
    with pytest.raises(TenantsError, match=r"tenants\[0\]\.guaranteedGPUs"):
        load_tenants(path, trace_tenants=set(), total_gpus=8)


def test_default_tenants_split_half_the_pool_equally_with_unmetered_budgets() -> None:
    tenants = default_tenants({"a", "b", "c", "d"}, total_gpus=256)
    assert {t.guaranteed_gpus for t in tenants.values()} == {32}
    assert all(math.isinf(t.credit_balance) for t in tenants.values())
    budgeted = budget_tenants({"a", "b", "c", "d"}, total_gpus=256)
    assert {t.credits_per_hour for t in budgeted.values()} == {128.0}
    assert all(t.credit_balance == t.credits_max == 24 * 128.0 for t in budgeted.values())


def test_percentile_is_nearest_rank() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0
    assert percentile([], 0.5) == 0.0


def test_themis_is_the_auction_alone_without_the_veterans_lane() -> None:
    themis = make_policy("themis", config=PoolConfig(), durations={})
    gpupool = make_policy("gpupool", config=PoolConfig(), durations={})
    assert isinstance(themis, RunCyclePolicy) and isinstance(gpupool, RunCyclePolicy)
    assert themis.config.veteran_share == 0.0
    assert gpupool.config.veteran_share == PoolConfig().veteran_share > 0
