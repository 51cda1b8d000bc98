"""Tenant terms for a simulation: a ``--tenants`` file, or the documented default.

File (YAML or JSON), the shape of ``GPUPool.spec.tenants``::

    tenants:
      - namespace: vc-7f04ca
        guaranteedGPUs: 16      # default 0
        maxGPUs: 128            # default: the whole pool
        weight: 1               # default 1
        credits: {perHour: 16, max: 384, initial: 384}   # initial defaults to max

Default when no file is given (``default_tenants``): every tenant seen in the
trace is guaranteed an equal share of half the pool
(``floor(0.5 * GPUs / tenants)``), may borrow up to the whole pool, has weight 1,
and has an unmetered budget (infinite credits): traces such as Philly's carry no
budgets, so by default the replay measures tiers, guarantees and the fairness
auction without inventing budgets; prices are still computed and reported. Pass a
file to replay with budgets (``credits``); ``budget_tenants`` builds the budgeted
variant used on the results page (each tenant earns 2 credits per hour per GPU of
its equal share of the pool, saves up to 24 hours of that, starts full). Tenants in
the trace but not in the file get budgeted default terms with no guarantee.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from gpupool.scheduling.model import Tenant, TenantName

DEFAULT_GUARANTEED_FRACTION = 0.5
DEFAULT_CREDIT_HOURS = 24.0
DEFAULT_CREDITS_PER_GPU_HOUR = 2.0


class TenantsError(ValueError):
    """A malformed tenants file; the message names the file and the entry."""


def default_tenant(name: str, *, guaranteed_gpus: int, fair_share_gpus: float) -> Tenant:
    per_hour = DEFAULT_CREDITS_PER_GPU_HOUR * max(1.0, fair_share_gpus)
    return Tenant(
        name=TenantName(name),
        guaranteed_gpus=guaranteed_gpus,
        max_gpus=None,
        weight=1.0,
        credits_per_hour=per_hour,
        credits_max=per_hour * DEFAULT_CREDIT_HOURS,
        credit_balance=per_hour * DEFAULT_CREDIT_HOURS,
    )


def budget_tenants(names: Iterable[str], *, total_gpus: int) -> dict[TenantName, Tenant]:
    """Equal guarantees over half the pool, and budgets worth 2 credits/GPU-hour."""
    ordered = sorted(set(names))
    if not ordered:
        return {}
    fair_share = total_gpus / len(ordered)
    guaranteed = math.floor(DEFAULT_GUARANTEED_FRACTION * fair_share)
    return {
        TenantName(n): default_tenant(n, guaranteed_gpus=guaranteed, fair_share_gpus=fair_share)
        for n in ordered
    }


def default_tenants(names: Iterable[str], *, total_gpus: int) -> dict[TenantName, Tenant]:
    """Equal guarantees over half the pool, unmetered budgets (the documented default)."""
    return {
        name: replace(
            tenant, credits_per_hour=math.inf, credits_max=math.inf, credit_balance=math.inf
        )
        for name, tenant in budget_tenants(names, total_gpus=total_gpus).items()
    }


def load_tenants(
    path: str | Path, *, trace_tenants: Iterable[str], total_gpus: int
) -> dict[TenantName, Tenant]:
    """Tenants from a file, plus default terms (no guarantee) for trace tenants it lacks."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TenantsError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else _yaml(text)
    except ValueError as error:
        kind = path.suffix.lstrip(".") or "YAML"
        raise TenantsError(f"{path}: not valid {kind}: {error}") from None
    entries = document.get("tenants") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise TenantsError(f"{path}: expected a mapping with a 'tenants' list")
    tenants: dict[TenantName, Tenant] = {}
    for position, entry in enumerate(entries):
        tenant = _parse_entry(entry, f"{path}: tenants[{position}]")
        tenants[tenant.name] = tenant
    missing = sorted(set(trace_tenants) - set(tenants))
    for name in missing:
        tenants[TenantName(name)] = default_tenant(
            name,
            guaranteed_gpus=0,
            fair_share_gpus=total_gpus / max(1, len(tenants) + len(missing)),
        )
    return tenants


def _yaml(text: str) -> Any:
    import yaml  # noqa: PLC0415 - only tenants files need it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(str(error)) from None


def _parse_entry(entry: Any, where: str) -> Tenant:
    if not isinstance(entry, Mapping):
        raise TenantsError(f"{where}: expected a mapping")
    name = entry.get("namespace", entry.get("name"))
    if not isinstance(name, str) or not name:
        raise TenantsError(f"{where}: 'namespace' must be a non-empty string")
    credits = entry.get("credits", {}) or {}
    if not isinstance(credits, Mapping):
        raise TenantsError(f"{where}: 'credits' must be a mapping")
    guaranteed = _number(entry.get("guaranteedGPUs", 0), f"{where}.guaranteedGPUs")
    max_gpus_raw = entry.get("maxGPUs")
    max_gpus = None if max_gpus_raw is None else int(_number(max_gpus_raw, f"{where}.maxGPUs"))
    per_hour = _number(credits.get("perHour", 0.0), f"{where}.credits.perHour")
    cap = _number(credits.get("max", 0.0), f"{where}.credits.max")
    initial = _number(credits.get("initial", cap), f"{where}.credits.initial")
    return Tenant(
        name=TenantName(name),
        guaranteed_gpus=int(guaranteed),
        max_gpus=max_gpus,
        weight=_number(entry.get("weight", 1.0), f"{where}.weight") or 1.0,
        credits_per_hour=per_hour,
        credits_max=cap,
        credit_balance=min(initial, cap) if cap > 0 else initial,
    )


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TenantsError(f"{where}: expected a number, got {value!r}")
    if value < 0 or not math.isfinite(value):
        raise TenantsError(f"{where}: must be a finite number >= 0, got {value!r}")
    return float(value)
