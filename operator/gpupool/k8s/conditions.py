"""``metav1.Condition`` lists: set one condition, keep the others."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gpupool.k8s.bodies import Condition
from gpupool.k8s.timestamps import rfc3339


def condition_status(value: bool) -> str:
    return "True" if value else "False"


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    *,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: float,
) -> list[Condition]:
    """``conditions`` with ``type_`` set; ``lastTransitionTime`` moves only when status does.

    Order is kept; a new condition type is appended.
    """
    wanted = condition_status(status)
    result: list[Condition] = []
    found = False
    for existing in conditions:
        current = _as_condition(existing)
        if current["type"] == type_:
            found = True
            changed = current["status"] != wanted
            current = {
                "type": type_,
                "status": wanted,
                "reason": reason,
                "message": message,
                "lastTransitionTime": rfc3339(now) if changed else current["lastTransitionTime"],
            }
        result.append(current)
    if not found:
        result.append(
            {
                "type": type_,
                "status": wanted,
                "reason": reason,
                "message": message,
                "lastTransitionTime": rfc3339(now),
            }
        )
    return result


def find_condition(conditions: Sequence[Mapping[str, Any]], type_: str) -> Condition | None:
    for existing in conditions:
        if existing.get("type") == type_:
            return _as_condition(existing)
    return None


def _as_condition(raw: Mapping[str, Any]) -> Condition:
    return {
        "type": str(raw.get("type", "")),
        "status": str(raw.get("status", "Unknown")),
        "reason": str(raw.get("reason", "")),
        "message": str(raw.get("message", "")),
        "lastTransitionTime": str(raw.get("lastTransitionTime", "")),
    }
