"""The Grafana dashboards of the chart: generated, well-formed, on metrics gpupool exports.

``tests/integration/test_monitoring.py`` evaluates every query against a real
Prometheus scraping a running operator and agent.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gpupool.metrics import OperatorMetrics
from gpupool.scheduling.config import HealthThresholds
from gpupool.telemetry.metrics import AgentMetrics
from tests.unit.chart.dashboard_queries import (
    DASHBOARDS,
    concrete,
    dashboard_files,
    load,
    metrics_used,
    panels,
    queries,
    variables_used,
)

GRAFANA_GLOBALS = {"__rate_interval", "__interval", "__range"}
MODERN_PANELS = {"timeseries", "stat", "bargauge", "state-timeline", "row"}
EXPECTED_VARIABLES = {
    "pool-overview": ["datasource", "pool"],
    "market-tenants": ["datasource", "pool", "tenant"],
    "gpu-health": ["datasource", "pool", "node", "gpu"],
}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards_generate", DASHBOARDS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while executing it
    spec.loader.exec_module(module)
    return module


def exported_series() -> set[str]:
    """Every sample name the operator and agent registries can expose."""
    registries: list[CollectorRegistry] = [
        OperatorMetrics().registry,
        AgentMetrics(thresholds=HealthThresholds()).registry,
    ]
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "gauge": ("",),
        "summary": ("", "_count", "_sum"),
    }
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


@pytest.fixture(scope="module", params=[p.stem for p in dashboard_files()])
def dashboard(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    name: str = request.param
    return name, load(DASHBOARDS / f"{name}.json")


def test_three_dashboards() -> None:
    assert sorted(p.stem for p in dashboard_files()) == sorted(EXPECTED_VARIABLES)


def test_checked_in_json_is_what_the_generator_writes() -> None:
    module = generator()
    for path in dashboard_files():
        assert path.read_text(encoding="utf-8") == module.render(path.stem), (
            f"{path.name} is stale: run python charts/gpupool/dashboards/generate.py"
        )
    assert module.main(["--check"]) == 0


def test_generator_check_notices_a_stale_file(tmp_path: Path, monkeypatch: Any) -> None:
    module = generator()
    for path in dashboard_files():
        shutil.copy(path, tmp_path / path.name)
    stale = tmp_path / "gpu-health.json"
    stale.write_text(stale.read_text().replace("GPU health", "GPU wealth"))
    monkeypatch.setattr(module, "HERE", tmp_path)
    assert module.main(["--check"]) == 1


def test_dashboard_identity(dashboard: tuple[str, dict[str, Any]]) -> None:
    name, data = dashboard
    assert data["uid"] == f"gpupool-{name}"
    assert data["title"].startswith("gpupool / ")
    assert "gpupool" in data["tags"]
    assert data["schemaVersion"] >= 36


def test_variables(dashboard: tuple[str, dict[str, Any]]) -> None:
    name, data = dashboard
    variables = data["templating"]["list"]
    assert [v["name"] for v in variables] == EXPECTED_VARIABLES[name]
    assert variables[0]["type"] == "datasource"
    assert variables[0]["query"] == "prometheus"
    for variable in variables[1:]:
        assert variable["type"] == "query"
        assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert variable["multi"] and variable["includeAll"]
        assert variable["definition"].startswith("label_values(")


def test_panels_are_modern_with_units_and_the_datasource_variable(
    dashboard: tuple[str, dict[str, Any]],
) -> None:
    _, data = dashboard
    for panel in panels(data):
        assert panel["type"] in MODERN_PANELS, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["fieldConfig"]["defaults"]["unit"], f"{panel['title']} has no unit"
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip()


def test_panel_ids_unique_and_grid_without_overlap(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, data = dashboard
    ids = [p["id"] for p in panels(data)]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(data):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] >= 1 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_queries_use_only_defined_variables(dashboard: tuple[str, dict[str, Any]]) -> None:
    name, data = dashboard
    defined = {v["name"] for v in data["templating"]["list"]} | GRAFANA_GLOBALS
    for query in queries():
        if query.dashboard == name:
            assert variables_used(query.expr) <= defined, query.name
    for variable in data["templating"]["list"][1:]:
        assert variables_used(variable["definition"]) <= defined, variable["name"]


def test_every_query_names_metrics_gpupool_exports() -> None:
    exported = exported_series()
    all_queries = queries()
    assert len(all_queries) >= 40
    for query in all_queries:
        used = metrics_used(query.expr)
        assert used, f"{query.name} queries no gpupool metric"
        assert used <= exported, f"{query.name}: unknown {sorted(used - exported)}"


def test_every_exported_metric_is_on_some_dashboard() -> None:
    """A metric nobody charts is a gap in the dashboards (or a metric to drop)."""
    shown = set().union(*(metrics_used(q.expr) for q in queries()))
    families = {name.removesuffix("_bucket") for name in shown}
    exported = exported_series()
    bases = {n for n in exported if not n.endswith(("_count", "_sum"))}
    missing = sorted(n for n in bases if n not in shown and n not in families)
    assert missing == [], f"exported but on no dashboard: {missing}"


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    """promtool (Debian's `prometheus` package) parses every query as a recording rule."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    rules = [
        {"record": f"gpupool:dashboard_query:{index}", "expr": concrete(query.expr)}
        for index, query in enumerate(queries())
    ]
    path = tmp_path / "queries.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout
