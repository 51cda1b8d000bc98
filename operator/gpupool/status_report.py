"""``gpupool status``: tables of pools, tenants and the queue from raw API objects (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Body = Mapping[str, Any]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _price(value: Any) -> str:
    return f"{float(value):.3g}" if isinstance(value, int | float) else "-"


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def pool_table(pools: Sequence[Body]) -> str:
    rows = []
    for pool in pools:
        status = pool.get("status") or {}
        gpus = status.get("gpus") or {}
        rows.append(
            [
                pool["metadata"]["name"],
                _text(status.get("nodes")),
                _text(gpus.get("total")),
                _text(gpus.get("healthy")),
                _text(gpus.get("allocated")),
                _text(gpus.get("idle")),
                _price(status.get("clearingPricePerGPUHour")),
            ]
        )
    return _table(["POOL", "NODES", "GPUS", "HEALTHY", "ALLOCATED", "IDLE", "PRICE"], rows)


def tenant_table(pools: Sequence[Body]) -> str:
    rows = []
    for pool in pools:
        terms = {t["namespace"]: t for t in (pool.get("spec") or {}).get("tenants") or []}
        for tenant in (pool.get("status") or {}).get("tenants") or []:
            spec = terms.get(tenant.get("namespace"), {})
            rows.append(
                [
                    pool["metadata"]["name"],
                    _text(tenant.get("namespace")),
                    _text(spec.get("guaranteedGPUs", 0)),
                    _text(tenant.get("allocatedGPUs")),
                    _text(tenant.get("borrowedGPUs")),
                    f"{float(tenant.get('credits') or 0):.1f}",
                    _text(tenant.get("pending")),
                ]
            )
    return _table(
        ["POOL", "TENANT", "GUARANTEED", "ALLOCATED", "BORROWED", "CREDITS", "PENDING"], rows
    )


def _placement(status: Body) -> str:
    nodes: dict[str, int] = {}
    for entry in status.get("placement") or []:
        nodes[entry.get("node", "?")] = nodes.get(entry.get("node", "?"), 0) + len(
            entry.get("gpus") or []
        )
    return ",".join(f"{node}:{count}" for node, count in sorted(nodes.items())) or "-"


_PHASE_ORDER = {"Running": 0, "Scheduled": 1, "Preempting": 2, "Queued": 3, "": 4}


def workload_table(jobs: Sequence[Body], services: Sequence[Body], *, limit: int = 40) -> str:
    rows: list[tuple[tuple[int, int, str], list[str]]] = []
    for job in jobs:
        spec, status = job.get("spec") or {}, job.get("status") or {}
        phase = status.get("phase") or ""
        if phase in ("Succeeded", "Failed"):
            continue
        gpus = int(spec.get("replicas", 1)) * int(spec.get("gpusPerReplica", 1))
        key = (
            _PHASE_ORDER.get(phase, 5),
            int(status.get("queuePosition") or 0),
            job["metadata"]["name"],
        )
        rows.append(
            (
                key,
                [
                    f"{job['metadata']['namespace']}/{job['metadata']['name']}",
                    "train",
                    _text(spec.get("priorityClass", "normal")),
                    str(gpus),
                    phase or "-",
                    _price(status.get("pricePerGPUHour")),
                    _placement(status),
                    _text(status.get("queuePosition")),
                    str(status.get("message") or "")[:90],
                ],
            )
        )
    for service in services:
        spec, status = service.get("spec") or {}, service.get("status") or {}
        ready = f"{status.get('readyReplicas') or 0}/{spec.get('replicas', 0)} ready"
        rows.append(
            (
                (0, 0, service["metadata"]["name"]),
                [
                    f"{service['metadata']['namespace']}/{service['metadata']['name']}",
                    "serve",
                    _text(spec.get("priorityClass", "normal")),
                    f"{float(spec.get('gpusPerReplica', 1)) * int(spec.get('replicas', 0)):g}",
                    ready,
                    _price(status.get("pricePerGPUHour")),
                    _placement(status),
                    "-",
                    str(status.get("message") or "")[:90],
                ],
            )
        )
    rows.sort(key=lambda item: item[0])
    shown = [row for _, row in rows[:limit]]
    table = _table(
        ["WORKLOAD", "KIND", "TIER", "GPUS", "STATE", "PRICE", "WHERE", "QUEUE", "WHY"], shown
    )
    if len(rows) > limit:
        table += f"\n... and {len(rows) - limit} more"
    return table


def render(
    pools: Sequence[Body], jobs: Sequence[Body], services: Sequence[Body], *, pool: str | None
) -> str:
    if pool is not None:
        pools = [p for p in pools if p["metadata"]["name"] == pool]
        jobs = [j for j in jobs if (j.get("spec") or {}).get("pool") == pool]
        services = [s for s in services if (s.get("spec") or {}).get("pool") == pool]
    return "\n\n".join([pool_table(pools), tenant_table(pools), workload_table(jobs, services)])
