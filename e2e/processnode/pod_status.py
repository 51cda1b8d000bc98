"""Pod status bodies a kubelet writes (pure): running, ready, terminated."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

LOOPBACK = "127.0.0.1"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, status: bool, now: str, reason: str = "") -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": kind,
        "status": "True" if status else "False",
        "lastTransitionTime": now,
    }
    if reason:
        condition["reason"] = reason
    return condition


def running_status(
    pod: Mapping[str, Any], *, started: datetime, ready: bool, restarts: int
) -> dict[str, Any]:
    """``status`` of a pod whose process runs."""
    now = rfc3339(started)
    container = pod["spec"]["containers"][0]
    return {
        "phase": "Running",
        "hostIP": LOOPBACK,
        "podIP": LOOPBACK,
        "podIPs": [{"ip": LOOPBACK}],
        "startTime": (pod.get("status") or {}).get("startTime") or now,
        "conditions": [
            _condition("PodScheduled", True, now),
            _condition("Initialized", True, now),
            _condition("ContainersReady", ready, now),
            _condition("Ready", ready, now),
        ],
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "ready": ready,
                "started": True,
                "restartCount": restarts,
                "state": {"running": {"startedAt": now}},
            }
        ],
    }


def readiness_status(ready: bool, *, now: datetime) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {
        "conditions": [
            _condition("ContainersReady", ready, stamp),
            _condition("Ready", ready, stamp),
        ]
    }


def terminated_status(
    pod: Mapping[str, Any],
    *,
    exit_code: int,
    started: datetime,
    finished: datetime,
    restarts: int,
    message: str = "",
) -> dict[str, Any]:
    """``status`` of a pod whose process exited and will not be restarted."""
    container = pod["spec"]["containers"][0]
    done = rfc3339(finished)
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": rfc3339(started),
        "finishedAt": done,
    }
    if message:
        terminated["message"] = message
    return {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "conditions": [
            _condition("ContainersReady", False, done, "PodCompleted"),
            _condition("Ready", False, done, "PodCompleted"),
        ],
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": restarts,
                "state": {"terminated": terminated},
            }
        ],
    }


def exit_code_of(returncode: int) -> int:
    """A container's exit code from ``Popen.returncode`` (128 + signal when killed)."""
    return 128 - returncode if returncode < 0 else returncode
