"""Monitoring for real: Debian's Prometheus scrapes the operator and the node agent
during a scenario, and every PromQL query of every dashboard panel returns data.

The scenario runs once per module on three kwok nodes of its own pool: the
simulated agent covers them (an XID 79 and an overheating GPU on the third node,
injected before the operator starts), the operator schedules a borrowing low-tier
job, a guaranteed one, a high-tier job that preempts the borrower and a gang that
cannot fit (pending), once Prometheus has scraped the operator's first cycle.
Prometheus scrapes both every second from its start; the queries are evaluated
over that whole window with Grafana's variables at "All".
Needs ``apt-get install prometheus`` (``prometheus`` and ``promtool``).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from e2e.monitoring.prometheus import Prometheus, free_port

from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import Scenario, operator_env, wait_for
from tests.unit.chart.dashboard_queries import PanelQuery, concrete, queries

QUERIES = queries()
RATE_INTERVAL = "5s"  # Grafana's $__rate_interval for a 1 s scrape interval is 4 s
AGENT_BYTES_PER_NODE_BOUND = 16 * 1024  # 8 GPUs; measured ~7 KiB
OPERATOR_BYTES_ONE_POOL_BOUND = 64 * 1024  # one pool, 3 nodes, 2 tenants; measured ~13 KiB

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="Debian's prometheus is not installed (apt-get install prometheus)",
)


@dataclass(frozen=True)
class Monitored:
    prometheus: Prometheus
    operator_port: int
    agent_port: int
    nodes: list[str]
    start: float
    end: float


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def healthy_value(port: int, node: str, gpu: str) -> float | None:
    """``gpupool_gpu_healthy`` of one GPU, None while the endpoint is not up yet."""
    try:
        text = metrics_text(port)
    except OSError:
        return None
    return series_value(text, "gpupool_gpu_healthy", node=node, gpu=gpu)


def series_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a Prometheus text exposition, or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def monitored(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Monitored]:
    workdir = tmp_path_factory.mktemp("monitoring")
    env = operator_env(cluster_env)
    credits = {"perHour": 100, "max": 100}
    tenants = [
        {"namespace": "lo", "guaranteedGPUs": 0, "credits": credits},
        {"namespace": "hi", "guaranteedGPUs": 8, "credits": credits},
    ]
    scenario = Scenario(kubectl, env, workdir, nodes=3, tenants=tenants, grace_s=2)
    faulty = scenario.node_names[2]
    faults = workdir / "faults.json"
    faults.write_text(
        json.dumps(
            [
                {"at_s": 0, "node": faulty, "gpu": 3, "kind": "xid", "xid": 79},
                {"at_s": 0, "node": faulty, "gpu": 5, "kind": "temperature_ramp",
                 "to_c": 97, "over_s": 8},
            ]
        )
    )  # fmt: skip
    operator_port, agent_port = free_port(), free_port()
    prometheus = Prometheus(
        {"gpupool-operator": [f"127.0.0.1:{operator_port}"],
         "gpupool-agent": [f"127.0.0.1:{agent_port}"]},
        workdir=workdir,
    )  # fmt: skip
    agent_log = (workdir / "agent.log").open("wb")
    agent = subprocess.Popen(
        [
            sys.executable, "-m", "gpupool.telemetry.agent", "--simulated",
            f"--nodes-selector=gpupool.io/pool={scenario.pool}", f"--faults={faults}",
            f"--metrics-port={agent_port}", "--metrics-address=127.0.0.1",
            "--interval-s=0.5", "--heartbeat-s=5", "--min-interval-s=1",
        ],
        env=env, stdout=agent_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        prometheus.start()
        # The faulty GPUs are out before the operator decides anything.
        wait_for(
            lambda: healthy_value(agent_port, faulty, "3") == 0.0,
            timeout=30, expected=f"the agent to report GPU 3 of {faulty} unhealthy",
        )  # fmt: skip
        scenario.start_operator("--metrics-port", str(operator_port))
        # Prometheus has scraped the operator's first cycle before any workload exists, so
        # every binding and preemption shows up as an increase (not as a series born at 1).
        # (Prometheus scrapes its targets for the first time ~5 s after it starts.)
        wait_for(
            lambda: prometheus.query(f'gpupool_node_info{{pool="{scenario.pool}"}}') or None,
            timeout=30, expected="Prometheus to have the operator's first cycle",
        )  # fmt: skip
        scenario.submit("crunch", tenant="lo", gpus=8, priority="low", complete_after=None)
        scenario.submit("steady", tenant="hi", gpus=8, priority="normal", complete_after=None)
        scenario.wait_phase("crunch", "lo", "Running", timeout=90)
        scenario.wait_phase("steady", "hi", "Running", timeout=90)
        scenario.submit("urgent", tenant="hi", gpus=8, priority="high", complete_after="5s")
        # Preempting lasts the 2 s grace period: wait for what stays (a loaded machine's
        # polls can miss the phase).
        wait_for(
            lambda: (scenario.status("crunch", "lo").get("preemptions") or 0) >= 1,
            timeout=90, expected="crunch to be preempted",
        )  # fmt: skip
        scenario.wait_phase("urgent", "hi", "Succeeded", timeout=90)
        scenario.submit("gang", tenant="lo", replicas=2, gpus=8, priority="normal")
        scenario.wait_phase("gang", "lo", "Queued", timeout=60)
        # Prometheus has seen what the scenario did (a few scrapes after the last change).
        for expr in ('gpupool_preemptions_total', 'gpupool_pending_workloads > 0',
                     'gpupool_gpu_xid_errors_total', 'gpupool_gpu_healthy == 0'):  # fmt: skip
            wait_for(lambda expr=expr: prometheus.query(expr) or None,  # type: ignore[misc]
                     timeout=30, expected=f"Prometheus to have {expr}")  # fmt: skip
        time.sleep(3)  # three more 1 s scrapes for rate windows after the last event
        yield Monitored(
            prometheus=prometheus,
            operator_port=operator_port,
            agent_port=agent_port,
            nodes=scenario.node_names,
            start=prometheus.started_at,
            end=time.time(),
        )
    except BaseException:
        print(f"--- operator log ---\n{scenario.log_tail()}", file=sys.stderr)
        print(f"--- prometheus log ---\n{prometheus.log()}", file=sys.stderr)
        raise
    finally:
        scenario.close()
        stop(agent)
        agent_log.close()
        prometheus.stop()
        tail = (workdir / "agent.log").read_text(errors="replace")[-3000:]
        assert "Traceback" not in tail, tail


def test_prometheus_scrapes_both_components(monitored: Monitored) -> None:
    targets = {t["labels"]["job"]: t for t in monitored.prometheus.targets()}
    assert set(targets) == {"gpupool-operator", "gpupool-agent"}
    for job, target in targets.items():
        assert target["health"] == "up", (job, target.get("lastError"))


@pytest.mark.parametrize("component", ["operator", "agent"])
def test_promtool_check_metrics_passes(monitored: Monitored, component: str) -> None:
    port = monitored.operator_port if component == "operator" else monitored.agent_port
    text = metrics_text(port)
    assert "gpupool_" in text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_agent_scrape_size_per_node(monitored: Monitored) -> None:
    text = metrics_text(monitored.agent_port)
    per_node = len(text.encode()) / len(monitored.nodes)
    samples = monitored.prometheus.query('scrape_samples_scraped{job="gpupool-agent"}')
    samples_per_node = float(samples[0]["value"][1]) / len(monitored.nodes)
    print(
        f"\nagent scrape: {per_node / 1024:.1f} KiB and {samples_per_node:.0f} samples per "
        f"8-GPU node ({len(monitored.nodes)} nodes in one simulated agent)",
        file=sys.stderr,
    )
    assert per_node < AGENT_BYTES_PER_NODE_BOUND


def test_operator_scrape_size(monitored: Monitored) -> None:
    text = metrics_text(monitored.operator_port)
    samples = monitored.prometheus.query('scrape_samples_scraped{job="gpupool-operator"}')
    print(
        f"\noperator scrape: {len(text.encode()) / 1024:.1f} KiB and "
        f"{float(samples[0]['value'][1]):.0f} samples (one pool, 3 nodes, 2 tenants)",
        file=sys.stderr,
    )
    assert len(text.encode()) < OPERATOR_BYTES_ONE_POOL_BOUND


def finite_values(result: list[dict[str, object]]) -> int:
    count = 0
    for series in result:
        values = series.get("values") or []
        assert isinstance(values, list)
        count += sum(1 for _, value in values if math.isfinite(float(value)))
    return count


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_dashboard_query_returns_data(monitored: Monitored, query: PanelQuery) -> None:
    window_s = math.ceil(monitored.end - monitored.start) + 1
    expr = concrete(query.expr, rate_interval=RATE_INTERVAL, interval="1s", range_=f"{window_s}s")
    result = monitored.prometheus.query_range(
        expr, start=monitored.start, end=monitored.end, step_s=1
    )
    assert result, f"no series for {expr}"
    assert finite_values(result) > 0, f"only NaN/Inf for {expr}: {result[:3]}"


def test_the_check_can_fail_a_query_without_data(monitored: Monitored) -> None:
    """Control: a selector matching nothing gives no series (so the check above can fail)."""
    expr = concrete('gpupool_gpu_healthy{node="no-such-node", gpu=~"$gpu"}')
    result = monitored.prometheus.query_range(
        expr, start=monitored.start, end=monitored.end, step_s=1
    )
    assert result == []
