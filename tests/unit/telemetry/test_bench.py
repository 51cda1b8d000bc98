from __future__ import annotations

import json

import pytest

from gpupool.telemetry.bench import main, write_rate


def test_steady_state_is_heartbeats_only() -> None:
    rate = write_rate(scenario="steady", nodes=2, minutes=3, churn_mean_s=120, xids_per_node_hour=0)
    # the first report per node, then one heartbeat every 24-30 s
    assert set(rate.by_kind_per_node_minute) == {"urgent", "heartbeat"}
    assert 1.9 <= rate.by_kind_per_node_minute["heartbeat"] <= 2.5


def test_churn_writes_more_but_stays_bounded_by_min_interval() -> None:
    rate = write_rate(scenario="churn", nodes=2, minutes=3, churn_mean_s=20, xids_per_node_hour=0)
    assert rate.by_kind_per_node_minute.get("change", 0) > 1
    assert rate.writes_per_node_minute <= 12 + rate.by_kind_per_node_minute.get("urgent", 0)


def test_xid_faults_are_urgent_writes() -> None:
    def urgent(xids_per_node_hour: float) -> float:
        rate = write_rate(
            scenario="churn+xid",
            nodes=2,
            minutes=3,
            churn_mean_s=600,
            xids_per_node_hour=xids_per_node_hour,
        )
        return rate.by_kind_per_node_minute["urgent"] * 2 * 3

    assert round(urgent(0)) == 2  # the first report of each node
    # 3 XIDs per node; a code a GPU already reported is not news (its history is unchanged)
    assert 2 + 3 <= round(urgent(60)) <= 2 + 6


def test_bench_command_prints_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nodes", "1", "--minutes", "1", "--json", "--quick"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["cpu"]["simulated_read_us_per_gpu"] > 0
    assert [rate["scenario"] for rate in figures["writes"]] == ["steady", "churn", "churn+xid"]
