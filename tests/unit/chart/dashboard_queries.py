"""The PromQL of the chart's Grafana dashboards, made concrete for a Prometheus.

Grafana interpolates before it queries; so do we: every dashboard variable
becomes its "All" value (``.*``, the variables are regex matchers) and Grafana's
``$__rate_interval`` / ``$__range`` / ``$__interval`` become durations chosen for the
scrape interval at hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.unit.chart.helm import CHART

DASHBOARDS = CHART / "dashboards"
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
METRIC = re.compile(r"\bgpupool_[a-z0-9_]+")
# Words of PromQL that look like gpupool metrics never do; labels never start with gpupool_.


@dataclass(frozen=True, slots=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries() -> list[PanelQuery]:
    found = []
    for path in dashboard_files():
        dashboard = load(path)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                found.append(PanelQuery(path.stem, panel["title"], target["refId"], target["expr"]))
    return found


def variables_used(expr: str) -> set[str]:
    return {a or b for a, b in VARIABLE.findall(expr)}


def metrics_used(expr: str) -> set[str]:
    return set(METRIC.findall(expr))


def concrete(
    expr: str, *, rate_interval: str = "1m", interval: str = "15s", range_: str = "1h"
) -> str:
    """``expr`` as Grafana would send it with every variable at "All"."""
    builtins = {"__rate_interval": rate_interval, "__interval": interval, "__range": range_}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return builtins.get(name, ".*")

    return VARIABLE.sub(substitute, expr)
