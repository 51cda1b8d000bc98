"""Shapes of the raw API bodies the operator reads and writes.

Pods and Services built from a user's ``PodTemplateSpec`` stay plain
``Manifest`` dicts (their schema is Kubernetes', not ours); the small bodies we
own completely are ``TypedDict``s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

Manifest = dict[str, Any]
"""A Kubernetes object as a JSON-ready dict (camelCase keys)."""


class OwnerReference(TypedDict):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ObjectReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    namespace: str
    uid: str


class BindingMeta(TypedDict):
    name: str
    namespace: str


class BindingTarget(TypedDict):
    apiVersion: str
    kind: str
    name: str


class Binding(TypedDict):
    apiVersion: str
    kind: str
    metadata: BindingMeta
    target: BindingTarget


class EventMeta(TypedDict):
    name: str
    namespace: str


class EventSource(TypedDict):
    component: str


class Event(TypedDict):
    apiVersion: str
    kind: str
    metadata: EventMeta
    involvedObject: ObjectReference
    reason: str
    message: str
    type: str
    count: int
    firstTimestamp: str
    lastTimestamp: str
    source: EventSource
    reportingComponent: str
    reportingInstance: str


class Condition(TypedDict):
    """``metav1.Condition``."""

    type: str
    status: str
    reason: str
    message: str
    lastTransitionTime: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectRef:
    """Identity of one of our custom objects (the owner of the pods we create)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    """Empty for cluster-scoped objects (GPUPool)."""
    uid: str

    def owner_reference(self) -> OwnerReference:
        """Controller reference: garbage collection deletes children with the owner."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def object_reference(self) -> ObjectReference:
        ref: ObjectReference = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
        }
        if self.namespace:
            ref["namespace"] = self.namespace
        return ref
