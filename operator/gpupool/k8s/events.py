"""``v1/Event`` bodies for transitions users should see in ``kubectl describe``."""

from __future__ import annotations

import enum

from gpupool.k8s import names
from gpupool.k8s.bodies import Event, ObjectRef
from gpupool.k8s.timestamps import rfc3339

CLUSTER_EVENT_NAMESPACE = "default"
"""Where Events about cluster-scoped objects (GPUPool) go, as kubectl expects."""
_MAX_MESSAGE = 1024


class EventType(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


def event(
    *,
    regarding: ObjectRef,
    reason: str,
    message: str,
    event_type: EventType = EventType.NORMAL,
    now: float,
    reporting_instance: str,
) -> Event:
    """An Event about ``regarding``; its name is unique per object and nanosecond."""
    namespace = regarding.namespace or CLUSTER_EVENT_NAMESPACE
    stamp = rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{regarding.name}.{int(now * 1e9):x}",
            "namespace": namespace,
        },
        "involvedObject": regarding.object_reference(),
        "reason": reason,
        "message": message[:_MAX_MESSAGE],
        "type": str(event_type),
        "count": 1,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "source": {"component": names.COMPONENT},
        "reportingComponent": names.COMPONENT,
        "reportingInstance": reporting_instance,
    }
