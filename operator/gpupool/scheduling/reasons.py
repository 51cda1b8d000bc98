"""Waiting reasons of one cycle's losers, built only when someone reads them."""

from __future__ import annotations

from gpupool.scheduling.decisions import WaitCode, WaitingReason
from gpupool.scheduling.model import Workload, WorkloadUid

CAPACITY_CODES = (WaitCode.NO_CAPACITY, WaitCode.NO_PLACEMENT)

Loss = tuple[Workload, WaitCode, float, float, float, bool]
"""A workload that found no GPUs: (workload, code, GPUs needed, GPUs free at its tier,
bid, borrower)."""


def waiting_reasons(
    fixed: dict[WorkloadUid, WaitingReason],
    losses: list[Loss],
    *,
    ask: dict[int, float],
    reserve: float,
    exhausted: bool,
) -> dict[WorkloadUid, WaitingReason]:
    """Reasons of every waiting workload (built only when someone reads them)."""
    waiting = dict(fixed)
    for workload, loss_code, needed, free_at_tier, bid, borrower in losses:
        code = loss_code
        shown_price = 0.0
        detail = ""
        if code is WaitCode.BELOW_RESERVE or code is WaitCode.NO_CREDITS:
            shown_price = reserve
        elif borrower:
            lowest = ask.get(int(workload.tier))
            if lowest is None:
                shown_price = reserve
            else:
                shown_price = lowest if lowest > reserve else reserve
                if bid < lowest and code is WaitCode.NO_CAPACITY:
                    code = WaitCode.OUTBID
                elif code is WaitCode.NO_CAPACITY:
                    detail = "lower bidders are inside their minimum runtime or margin"
        if exhausted and code in CAPACITY_CODES:
            detail = "preemption search budget of this cycle used up; next cycle"
        waiting[workload.uid] = WaitingReason(
            code, needed, free_at_tier, workload.tier, bid, shown_price, detail
        )
    return waiting
