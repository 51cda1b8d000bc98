"""Health filter: which GPUs stay in the pool this cycle."""

from __future__ import annotations

from gpupool.scheduling.config import HealthThresholds
from gpupool.scheduling.model import GPU


def gpu_problem(gpu: GPU, thresholds: HealthThresholds) -> str | None:
    """Why ``gpu`` must leave the pool, or ``None`` when it is usable.

    Checked in this order: the agent's own verdict, XID errors in the evict
    list, uncorrected ECC errors, temperature.
    """
    if not gpu.healthy:
        return "reported unhealthy or lost"
    if gpu.xid_errors:
        bad = sorted(gpu.xid_errors & thresholds.evict_on_xid)
        if bad:
            return "XID " + ",".join(str(code) for code in bad)
    if gpu.uncorrected_ecc_errors > thresholds.max_uncorrected_ecc_errors:
        return f"{gpu.uncorrected_ecc_errors} uncorrected ECC errors"
    if gpu.temperature_c is not None and gpu.temperature_c > thresholds.max_temperature_c:
        return f"temperature {gpu.temperature_c:.0f}C > {thresholds.max_temperature_c:.0f}C"
    return None


def is_usable(gpu: GPU, thresholds: HealthThresholds) -> bool:
    """Fast path of :func:`gpu_problem` (called once per GPU per cycle)."""
    if not gpu.healthy:
        return False
    if gpu.xid_errors and not gpu.xid_errors.isdisjoint(thresholds.evict_on_xid):
        return False
    if gpu.uncorrected_ecc_errors > thresholds.max_uncorrected_ecc_errors:
        return False
    temperature = gpu.temperature_c
    return temperature is None or temperature <= thresholds.max_temperature_c
