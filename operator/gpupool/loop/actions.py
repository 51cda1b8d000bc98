"""What one cycle asks the actuator to write: per object, a status patch plus writes.

A :class:`Change` is the unit of assume/forget: the status patch is the commit
point (it records the decision in the API, where a restarted operator finds it);
the writes after it (pods, bindings, deletions) are idempotent, and whatever a
failure leaves undone the next cycle's lifecycle pass repairs from that status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpupool.k8s.bodies import Event, Manifest, ObjectRef
from gpupool.state.records import JobRecord, ServiceRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateObject:
    """Create a Pod or Service; one that already exists counts as created."""

    manifest: Manifest


@dataclass(frozen=True, slots=True, kw_only=True)
class BindPod:
    namespace: str
    name: str
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeletePod:
    namespace: str
    name: str
    uid: str
    grace_period_s: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteWorkload:
    """``ttlSecondsAfterFinished``: delete the finished object itself (owner refs take pods)."""

    plural: str
    namespace: str
    name: str
    uid: str


Write = CreateObject | BindPod | DeletePod | DeleteWorkload


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """Everything one cycle writes for one object, in order."""

    target: ObjectRef
    plural: str
    status_patch: Mapping[str, Any] | None = None
    """Merge patch of ``.status`` (``None`` values delete fields)."""
    assumed: JobRecord | ServiceRecord | None = None
    """The record as it will be once the patch lands (assumed in the cache first)."""
    writes: tuple[Write, ...] = ()
    events: tuple[Event, ...] = ()
    urgent: bool = True
    """False for cosmetic updates (queue position, price, credits) the actuator may
    postpone when it wrote the same object a moment ago."""

    @property
    def is_empty(self) -> bool:
        return self.status_patch is None and not self.writes and not self.events
