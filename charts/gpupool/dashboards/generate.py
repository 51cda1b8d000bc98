"""Writes the chart's Grafana dashboards: ``charts/gpupool/dashboards/*.json``.

This module is the one source of the dashboards; the JSON files next to it are
its output, checked in so that Helm can load them (``.Files.Glob``), and checked
for drift by ``tests/unit/chart``::

    python charts/gpupool/dashboards/generate.py           # rewrite the JSON
    python charts/gpupool/dashboards/generate.py --check   # exit 1 if stale

Three dashboards, all on the metrics gpupool exports itself (operator:
``gpupool.metrics``; node agent: ``gpupool.telemetry.metrics``):

* ``pool-overview``: capacity, allocation and utilization, queue and wait times
  (create-to-bound latency), scheduling cycle, reconcile errors;
* ``market-tenants``: clearing price, tenant credits, GPUs held and borrowed per
  tenant, demand by tenant, preemptions;
* ``gpu-health``: per node/GPU utilization, memory, temperature, power, health, XIDs,
  for the nodes of the selected pools (the agent's series joined to the operator's
  ``gpupool_node_info`` on ``node``).

Every panel queries the ``$datasource`` variable, filters by the dashboard's
variables (regex matchers, so "All" is ``.*``) and carries its unit in
``fieldConfig.defaults.unit``. Grafana's ``$__rate_interval`` / ``$__range`` are the
only other placeholders; ``tests/integration/test_monitoring.py`` substitutes them
and evaluates every expression against a real Prometheus.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24

JSON = dict[str, Any]

# Label matchers shared by the panels (regex: the variables are multi-value with "All").
POOL = 'pool=~"$pool"'
GPU_SELECTOR = 'node=~"$node", gpu=~"$gpu"'
# The agent's per-GPU series know their node, not their pool: join them to the operator's
# gpupool_node_info (one series per pool and node; `max by` folds replicas scraped twice).
IN_POOL = f" * on(node) group_left(pool) max by (node, pool) (gpupool_node_info{{{POOL}}})"


def gpu_series(metric: str, selector: str = "") -> str:
    """A per-GPU agent series of the selected pools' nodes (gains a ``pool`` label)."""
    return f"{metric}{{{selector}}}{IN_POOL}"


# --------------------------------------------------------------------------- panels


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Panel:
    """One visualization; ``kind`` is a Grafana panel type."""

    kind: str
    title: str
    description: str
    queries: Sequence[Query]
    unit: str
    width: int = 12
    height: int = 8
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    thresholds: Sequence[tuple[float | None, str]] = ((None, "green"),)
    mappings: Sequence[JSON] = ()
    stacked: bool = False
    bars: bool = False
    threshold_line: bool = False
    options: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    title: str


Item = Panel | Row


def timeseries(title: str, description: str, *queries: Query, unit: str, **kw: Any) -> Panel:
    return Panel(kind="timeseries", title=title, description=description, queries=queries,
                 unit=unit, **kw)  # fmt: skip


def stat(title: str, description: str, query: Query, *, unit: str, **kw: Any) -> Panel:
    kw.setdefault("width", 4)
    kw.setdefault("height", 4)
    return Panel(kind="stat", title=title, description=description, queries=(query,), unit=unit,
                 **kw)  # fmt: skip


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> JSON:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def _targets(panel: Panel) -> list[JSON]:
    targets = []
    for index, query in enumerate(panel.queries):
        target: JSON = {
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": not query.instant,
            "instant": query.instant,
            "refId": chr(ord("A") + index),
        }
        targets.append(target)
    return targets


def _field_defaults(panel: Panel) -> JSON:
    defaults: JSON = {
        "unit": panel.unit,
        "color": {"mode": "palette-classic" if panel.kind == "timeseries" else "thresholds"},
        "thresholds": _thresholds(panel.thresholds),
        "mappings": list(panel.mappings),
    }
    for key in ("min", "max", "decimals"):
        value = getattr(panel, key)
        if value is not None:
            defaults[key] = value
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "bars" if panel.bars else "line",
            "lineWidth": 1,
            "fillOpacity": 80 if panel.bars else (20 if panel.stacked else 10),
            "gradientMode": "none",
            "showPoints": "never",
            "spanNulls": False,
            "axisPlacement": "auto",
            "axisSoftMin": 0,
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
            "thresholdsStyle": {"mode": "dashed" if panel.threshold_line else "off"},
        }
    elif panel.kind == "state-timeline":
        defaults["custom"] = {"fillOpacity": 80, "lineWidth": 0}
    return defaults


def _options(panel: Panel) -> JSON:
    if panel.kind == "timeseries":
        options: JSON = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True,
                       "calcs": []},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }  # fmt: skip
    elif panel.kind == "stat":
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
            "wideLayout": True,
        }
    elif panel.kind == "bargauge":
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
        }
    elif panel.kind == "state-timeline":
        options = {
            "showValue": "never",
            "mergeValues": True,
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"},
        }
    else:
        options = {}
    options.update(panel.options)
    return options


def _layout(items: Sequence[Item]) -> Iterator[JSON]:
    """Grafana JSON of the items, laid out left to right, wrapping at 24 columns."""
    x = y = row_height = 0
    panel_id = 1
    for item in items:
        if isinstance(item, Row):
            if x:
                y += row_height
            x, row_height = 0, 0
            yield {
                "type": "row",
                "id": panel_id,
                "title": item.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                "panels": [],
            }
            y += 1
            panel_id += 1
            continue
        if x + item.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        yield {
            "type": item.kind,
            "id": panel_id,
            "title": item.title,
            "description": item.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": item.height, "w": item.width, "x": x, "y": y},
            "targets": _targets(item),
            "fieldConfig": {"defaults": _field_defaults(item), "overrides": []},
            "options": _options(item),
        }
        panel_id += 1
        x += item.width
        row_height = max(row_height, item.height)


# ------------------------------------------------------------------------ variables


def datasource_variable() -> JSON:
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_variable(name: str, label: str, query: str, *, all_value: str | None = ".*") -> JSON:
    variable: JSON = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor"},
        "refresh": 2,
        "regex": "",
        "sort": 3,
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "skipUrlSync": False,
    }
    if all_value is not None:
        variable["allValue"] = all_value
    return variable


def dashboard(
    *, uid: str, title: str, description: str, variables: Sequence[JSON], items: Sequence[Item]
) -> JSON:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["gpupool"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": "gpupool dashboards",
                "type": "dashboards",
                "tags": ["gpupool"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": list(_layout(items)),
    }


POOL_VARIABLE = query_variable("pool", "Pool", "label_values(gpupool_gpus, pool)")
TENANT_VARIABLE = query_variable(
    "tenant", "Tenant", 'label_values(gpupool_tenant_credits{pool=~"$pool"}, tenant)'
)
NODE_VARIABLE = query_variable(
    "node", "Node", 'label_values(gpupool_node_info{pool=~"$pool"}, node)'
)
GPU_VARIABLE = query_variable("gpu", "GPU", 'label_values(gpupool_gpu_healthy{node=~"$node"}, gpu)')


# ------------------------------------------------------------------------ dashboards


def pool_overview() -> JSON:
    gpus = f'gpupool_gpus{{{POOL}, state="%s"}}'
    items: list[Item] = [
        Row(title="Capacity"),
        stat("GPUs", "GPUs on the pool's nodes.", Query(expr=f"sum({gpus % 'total'})"),
             unit="short"),
        stat("Healthy", "GPUs that pass the pool's health thresholds.",
             Query(expr=f"sum({gpus % 'healthy'})"), unit="short"),
        stat("Unhealthy", "GPUs out of scheduling: failing telemetry (XID, ECC, heat, lost) "
             "or on a node that is not schedulable.",
             Query(expr=f"sum({gpus % 'unhealthy'})"), unit="short",
             thresholds=((None, "green"), (1, "red"))),
        stat("Allocated", "GPUs bound to running workloads.",
             Query(expr=f"sum({gpus % 'allocated'})"), unit="short"),
        stat("Allocation", "Allocated share of healthy GPUs.",
             Query(expr=f"sum({gpus % 'allocated'}) / sum({gpus % 'healthy'})"),
             unit="percentunit", min=0, max=1, decimals=1,
             thresholds=((None, "blue"), (0.5, "green"), (0.95, "orange"))),
        stat("Pending workloads", "Workloads waiting for GPUs.",
             Query(expr=f"sum(gpupool_pending_workloads{{{POOL}}})"), unit="short",
             thresholds=((None, "green"), (1, "orange"))),
        timeseries("GPUs by state", "Allocated, idle and unhealthy GPUs stack up to all the "
                   "pool's GPUs.",
                   Query(expr=f'sum by (state) (gpupool_gpus{{{POOL}, '
                              'state=~"allocated|idle|unhealthy"})', legend="{{state}}"),
                   unit="short", stacked=True, min=0),
        timeseries("Allocation by pool", "Allocated share of each pool's healthy GPUs.",
                   Query(expr=f'sum by (pool) ({gpus % "allocated"}) / '
                              f'sum by (pool) ({gpus % "healthy"})', legend="{{pool}}"),
                   unit="percentunit", min=0, max=1),
        Row(title="Utilization (node agents)"),
        timeseries("GPU utilization", "Mean SM utilization of the pools' GPUs the agents "
                   "report, and of the busiest node.",
                   Query(expr=f"avg({gpu_series('gpupool_gpu_utilization_ratio')})",
                         legend="mean"),
                   Query(expr="max(avg by (node) "
                              f"({gpu_series('gpupool_gpu_utilization_ratio')}))",
                         legend="busiest node"),
                   unit="percentunit", min=0, max=1),
        timeseries("GPU memory in use", "Device memory used, summed over the pools' GPUs.",
                   Query(expr=f"sum({gpu_series('gpupool_gpu_memory_used_bytes')})",
                         legend="used"),
                   Query(expr=f"sum({gpu_series('gpupool_gpu_memory_used_bytes')}) + "
                              f"sum({gpu_series('gpupool_gpu_memory_free_bytes')})",
                         legend="capacity"),
                   unit="bytes", min=0),
        Row(title="Queue"),
        timeseries("Pending by tier", "Waiting workloads per priority tier.",
                   Query(expr=f"sum by (tier) (gpupool_pending_workloads{{{POOL}}})",
                         legend="{{tier}}"),
                   unit="short", stacked=True, min=0),
        timeseries("Pending by tenant", "Waiting workloads per tenant namespace.",
                   Query(expr=f"sum by (tenant) (gpupool_pending_workloads{{{POOL}}})",
                         legend="{{tenant}}"),
                   unit="short", min=0),
        Row(title="Wait times"),
        *(stat(f"Wait p{round(q * 100)}", f"{round(q * 100)}th percentile of the time from "
               "creation until all pods were bound, over the dashboard's time range (first "
               "launches only).",
               Query(expr=f"histogram_quantile({q}, sum by (le) (increase("
                          f"gpupool_bind_latency_seconds_bucket{{{POOL}}}[$__range])))"),
               unit="s", decimals=1, width=6,
               thresholds=((None, "green"), (60, "orange"), (600, "red")))
          for q in (0.5, 0.95)),
        stat("Workloads bound", "First launches bound over the dashboard's time range.",
             Query(expr=f"sum(increase(gpupool_bind_latency_seconds_count{{{POOL}}}"
                        "[$__range]))"), unit="short", decimals=0, width=6),
        stat("Mean wait", "Mean time from creation until all pods were bound, over the "
             "dashboard's time range.",
             Query(expr=f"sum(increase(gpupool_bind_latency_seconds_sum{{{POOL}}}[$__range]))"
                        f" / sum(increase(gpupool_bind_latency_seconds_count{{{POOL}}}"
                        "[$__range]))"), unit="s", decimals=1, width=6),
        timeseries("Wait time (create to bound)", "Time from a workload's creation until all "
                   "pods of its first launch were bound (queueing included): p50 and p95.",
                   *(Query(expr=f"histogram_quantile({q}, sum by (le) (rate("
                                f"gpupool_bind_latency_seconds_bucket{{{POOL}}}"
                                "[$__rate_interval])))", legend=f"p{round(q * 100)}")
                     for q in (0.5, 0.95)),
                   unit="s", min=0),
        timeseries("Wait time p95 by tier", "95th percentile of the create-to-bound time per "
                   "priority tier.",
                   Query(expr="histogram_quantile(0.95, sum by (le, tier) (rate("
                              f"gpupool_bind_latency_seconds_bucket{{{POOL}}}"
                              "[$__rate_interval])))", legend="{{tier}}"),
                   unit="s", min=0),
        Row(title="Scheduling"),
        timeseries("Scheduling cycle duration", "Quantiles of one cycle (snapshot, decide, "
                   "write) and of the scheduling core alone.",
                   *(Query(expr=f"histogram_quantile({q}, sum by (le) (rate("
                                f"gpupool_cycle_duration_seconds_bucket{{{POOL}}}"
                                f"[$__rate_interval])))", legend=f"cycle p{round(q * 100)}")
                     for q in (0.5, 0.99)),
                   Query(expr="histogram_quantile(0.99, sum by (le) (rate("
                              f"gpupool_decide_duration_seconds_bucket{{{POOL}}}"
                              "[$__rate_interval])))", legend="decide p99"),
                   unit="s", min=0),
        timeseries("Cycles per second", "Scheduling cycles run, per pool.",
                   Query(expr="sum by (pool) (rate(gpupool_cycle_duration_seconds_count"
                              f"{{{POOL}}}[$__rate_interval]))", legend="{{pool}}"),
                   unit="ops", min=0),
        timeseries("Decisions", "Bindings and preemptions carried out per second.",
                   Query(expr=f"sum by (kind) (rate(gpupool_decisions_total{{{POOL}}}"
                              "[$__rate_interval]))", legend="{{kind}}"),
                   unit="ops", min=0),
        timeseries("API writes", "Writes to the Kubernetes API by the operator, by verb and "
                   "outcome (errors are retried next cycle).",
                   Query(expr="sum by (verb, outcome) (rate(gpupool_api_writes_total"
                              "[$__rate_interval]))", legend="{{verb}} {{outcome}}"),
                   unit="reqps", min=0),
        timeseries("Reconcile errors", "Failures per second by resource: scheduling cycles "
                   "that raised (gpupools), event handlers that raised, failed API writes.",
                   Query(expr="sum by (resource) (rate(gpupool_reconcile_errors_total"
                              "[$__rate_interval]))", legend="{{resource}}"),
                   unit="ops", min=0),
        stat("Leader", "Operator replicas holding the scheduling lease (1 expected).",
             Query(expr="sum(gpupool_leader)"), unit="short", width=6,
             thresholds=((None, "red"), (1, "green"), (2, "red"))),
        stat("Errors in range", "Reconcile failures over the dashboard's time range.",
             Query(expr="sum(increase(gpupool_reconcile_errors_total[$__range]))"),
             unit="short", decimals=0, width=6, thresholds=((None, "green"), (1, "orange"))),
    ]  # fmt: skip
    return dashboard(
        uid="gpupool-pool-overview",
        title="gpupool / Pool overview",
        description="Capacity, allocation, utilization, queue and scheduling of GPU pools.",
        variables=[POOL_VARIABLE],
        items=items,
    )


def market_tenants() -> JSON:
    tenant = f'{POOL}, tenant=~"$tenant"'
    items: list[Item] = [
        Row(title="Auction"),
        stat("Clearing price", "Price of the last auction (highest over the selected pools).",
             Query(expr=f"max(gpupool_clearing_price_per_gpu_hour{{{POOL}}})"),
             unit="suffix: cr/GPU·h", decimals=2),
        stat("Preemptions", "Workloads preempted over the dashboard's time range.",
             Query(expr=f"sum(increase(gpupool_preemptions_total{{{POOL}}}[$__range]))"),
             unit="short", decimals=0, thresholds=((None, "green"), (1, "orange"))),
        stat("Credits left", "Credit balance of the selected tenants.",
             Query(expr=f"sum(gpupool_tenant_credits{{{tenant}}})"), unit="short",
             decimals=1),
        stat("Pending", "Workloads of the selected tenants waiting for GPUs.",
             Query(expr=f"sum(gpupool_pending_workloads{{{tenant}}})"), unit="short",
             thresholds=((None, "green"), (1, "orange"))),
        stat("GPUs held", "GPUs the selected tenants' workloads hold.",
             Query(expr=f"sum(gpupool_tenant_allocated_gpus{{{tenant}}})"), unit="short"),
        stat("GPUs borrowed", "GPUs the selected tenants hold beyond their guarantees.",
             Query(expr=f"sum(gpupool_tenant_borrowed_gpus{{{tenant}}})"), unit="short",
             thresholds=((None, "green"), (1, "blue"))),
        timeseries("Clearing price", "Price per GPU-hour each pool's auction cleared at "
                   "(the reserve price when uncontested).",
                   Query(expr=f"gpupool_clearing_price_per_gpu_hour{{{POOL}}}",
                         legend="{{pool}}"),
                   unit="suffix: cr/GPU·h", min=0, width=24),
        Row(title="Tenants"),
        timeseries("Credits", "Credit balance per tenant: it grows by credits.perHour up to "
                   "credits.max and pays for borrowed GPUs.",
                   Query(expr=f"sum by (tenant) (gpupool_tenant_credits{{{tenant}}})",
                         legend="{{tenant}}"),
                   unit="short", min=0),
        timeseries("Credit spend rate", "Credits per hour a tenant's balance is falling "
                   "(negative: it is refilling).",
                   Query(expr=f"-sum by (tenant) (deriv(gpupool_tenant_credits{{{tenant}}}"
                              "[$__rate_interval])) * 3600", legend="{{tenant}}"),
                   unit="short"),
        timeseries("GPUs held by tenant", "GPUs each tenant's workloads hold (stacked: the "
                   "pools' allocated GPUs).",
                   Query(expr=f"sum by (tenant) (gpupool_tenant_allocated_gpus{{{tenant}}})",
                         legend="{{tenant}}"),
                   unit="short", min=0, stacked=True),
        timeseries("Borrowed GPUs by tenant", "GPUs each tenant holds beyond its guarantee "
                   "(paid for with credits, preemptible when the owner reclaims them).",
                   Query(expr=f"sum by (tenant) (gpupool_tenant_borrowed_gpus{{{tenant}}})",
                         legend="{{tenant}}"),
                   unit="short", min=0, stacked=True),
        timeseries("Pending by tenant and tier", "Demand the pool cannot serve right now.",
                   Query(expr=f"sum by (tenant, tier) (gpupool_pending_workloads{{{tenant}}})",
                         legend="{{tenant}} {{tier}}"),
                   unit="short", min=0, stacked=True),
        Panel(kind="bargauge", title="Borrowed GPUs now",
              description="GPUs each tenant holds beyond its guarantee now.",
              queries=(Query(expr=f"sum by (tenant) (gpupool_tenant_borrowed_gpus{{{tenant}}})",
                             legend="{{tenant}}", instant=True),),
              unit="short", min=0, width=6),
        Panel(kind="bargauge", title="Credits left now",
              description="Current balance per tenant.",
              queries=(Query(expr=f"sum by (tenant) (gpupool_tenant_credits{{{tenant}}})",
                             legend="{{tenant}}", instant=True),),
              unit="short", min=0, width=6),
        Row(title="Preemption"),
        timeseries("Preemptions by cause", "Workloads preempted per interval, by cause "
                   "(tier, guarantee reclaim, outbid, unhealthy GPU...).",
                   Query(expr=f"sum by (cause) (increase(gpupool_preemptions_total{{{POOL}}}"
                              "[$__rate_interval]))", legend="{{cause}}"),
                   unit="short", min=0, bars=True),
        timeseries("Bindings vs preemptions", "Churn: preemptions per binding.",
                   Query(expr=f'sum(rate(gpupool_decisions_total{{{POOL}, kind="preempt"}}'
                              "[$__rate_interval])) / "
                              f'sum(rate(gpupool_decisions_total{{{POOL}, kind="bind"}}'
                              "[$__rate_interval]))", legend="preemptions per binding"),
                   unit="percentunit", min=0),
    ]  # fmt: skip
    return dashboard(
        uid="gpupool-market-tenants",
        title="gpupool / Market and tenants",
        description="Auction clearing prices, tenant credits and borrowing, demand and "
        "preemptions.",
        variables=[POOL_VARIABLE, TENANT_VARIABLE],
        items=items,
    )


HEALTH_MAPPINGS: Sequence[JSON] = (
    {
        "type": "value",
        "options": {
            "0": {"text": "unhealthy", "color": "red", "index": 0},
            "1": {"text": "healthy", "color": "green", "index": 1},
        },
    },
)


def gpu_health() -> JSON:
    sel = GPU_SELECTOR
    legend = "{{node}} / GPU {{gpu}}"

    def g(metric: str) -> str:
        return gpu_series(metric, sel)

    items: list[Item] = [
        Row(title="Fleet"),
        stat("Nodes", "Nodes of the selected pools (the operator's view).",
             Query(expr=f'count(max by (node) (gpupool_node_info{{{POOL}, node=~"$node"}}))'),
             unit="short", width=3),
        stat("GPUs reporting", "GPUs of those nodes with a health series from a node agent.",
             Query(expr=f"count({g('gpupool_gpu_healthy')})"), unit="short", width=3),
        stat("Unhealthy GPUs", "GPUs failing the agent's thresholds now.",
             Query(expr=f"count({g('gpupool_gpu_healthy')} == 0) or vector(0)"),
             unit="short", width=3, thresholds=((None, "green"), (1, "red"))),
        stat("Mean utilization", "Mean SM utilization.",
             Query(expr=f"avg({g('gpupool_gpu_utilization_ratio')})"),
             unit="percentunit", min=0, max=1, decimals=1),
        stat("Memory in use", "Used share of the device memory.",
             Query(expr=f"sum({g('gpupool_gpu_memory_used_bytes')}) / "
                        f"(sum({g('gpupool_gpu_memory_used_bytes')}) + "
                        f"sum({g('gpupool_gpu_memory_free_bytes')}))"),
             unit="percentunit", min=0, max=1, decimals=1),
        stat("Hottest GPU", "Highest GPU temperature now.",
             Query(expr=f"max({g('gpupool_gpu_temperature_celsius')})"), unit="celsius",
             thresholds=((None, "green"), (80, "orange"), (90, "red"))),
        stat("XID errors", "XID events over the dashboard's time range.",
             Query(expr=f"sum(increase(gpupool_gpu_xid_errors_total{{{sel}}}[$__range])"
                        f"{IN_POOL}) or vector(0)"),
             unit="short", decimals=0, width=3, thresholds=((None, "green"), (1, "red"))),
        Row(title="Per GPU"),
        timeseries("Utilization", "SM utilization per GPU.",
                   Query(expr=g("gpupool_gpu_utilization_ratio"), legend=legend),
                   unit="percentunit", min=0, max=1),
        timeseries("Memory used", "Device memory in use per GPU.",
                   Query(expr=g("gpupool_gpu_memory_used_bytes"), legend=legend),
                   unit="bytes", min=0),
        timeseries("Temperature", "GPU core temperature (dashed: 90 °C, the default "
                   "health threshold).",
                   Query(expr=g("gpupool_gpu_temperature_celsius"), legend=legend),
                   unit="celsius", threshold_line=True,
                   thresholds=((None, "green"), (90, "red"))),
        timeseries("Power", "Board power draw per GPU.",
                   Query(expr=g("gpupool_gpu_power_watts"), legend=legend),
                   unit="watt", min=0),
        Panel(kind="state-timeline", title="Health", description="Health per GPU over time, "
              "as the node agent judges it (XID in the evict list, ECC, heat, lost).",
              queries=(Query(expr=g("gpupool_gpu_healthy"), legend=legend),),
              unit="none", mappings=HEALTH_MAPPINGS, width=24, height=10,
              thresholds=((None, "red"), (1, "green"))),
        timeseries("XID errors by code", "XID events per interval, by node, GPU and XID code.",
                   Query(expr="sum by (node, gpu, xid) (increase(gpupool_gpu_xid_errors_total"
                              f"{{{sel}}}[$__rate_interval]){IN_POOL})",
                         legend="{{node}} / GPU {{gpu}} XID {{xid}}"),
                   unit="short", min=0, bars=True, width=24),
        Row(title="Node agents"),
        timeseries("Telemetry read time", "p99 time of one read of all GPUs of an agent "
                   "(every agent, whatever its pools).",
                   Query(expr="histogram_quantile(0.99, sum by (le, instance) (rate("
                              "gpupool_agent_read_seconds_bucket[$__rate_interval])))",
                         legend="{{instance}}"),
                   unit="s", min=0),
        timeseries("Annotation writes", "Telemetry writes of the agents to the API server, "
                   "by kind (urgent, change, heartbeat) and result.",
                   Query(expr="sum by (kind, result) (rate(gpupool_agent_api_writes_total"
                              "[$__rate_interval]))", legend="{{kind}} {{result}}"),
                   unit="reqps", min=0),
    ]  # fmt: skip
    return dashboard(
        uid="gpupool-gpu-health",
        title="gpupool / GPU health",
        description="Per node and GPU telemetry from the gpupool node agents, for the nodes "
        "of the selected pools.",
        variables=[POOL_VARIABLE, NODE_VARIABLE, GPU_VARIABLE],
        items=items,
    )


DASHBOARDS = {
    "pool-overview": pool_overview,
    "market-tenants": market_tenants,
    "gpu-health": gpu_health,
}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a JSON file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name in DASHBOARDS:
        path = HERE / f"{name}.json"
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale dashboards (run {Path(__file__).name}): {', '.join(stale)}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
