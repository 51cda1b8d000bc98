"""A fake :class:`KubeClient`: objects in dicts, every call recorded, failures injectable."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import Any

from gpupool.k8s.bodies import Binding, Event, Manifest
from gpupool.k8s.client import Listing
from gpupool.k8s.errors import AlreadyExists, ApiError, Conflict, NotFound
from gpupool.loop.status import merge_patch


class FakeKubeClient:
    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], Manifest] = {}
        self.services: dict[tuple[str, str], Manifest] = {}
        self.custom: dict[tuple[str, str, str], Manifest] = {}
        self.events: list[Event] = []
        self.leases: dict[tuple[str, str], Manifest] = {}
        self.nodes: dict[str, Manifest] = {}
        self.calls: list[str] = []
        self.fail: dict[str, ApiError] = {}
        """verb -> error to raise on the next such call (e.g. ``"bind"``)."""
        self._versions = itertools.count(100)

    def _maybe_fail(self, verb: str) -> None:
        self.calls.append(verb)
        error = self.fail.pop(verb, None)
        if error is not None:
            raise error

    def _stamp(self, body: Manifest) -> Manifest:
        body.setdefault("metadata", {})["resourceVersion"] = str(next(self._versions))
        return body

    def set_pod_phase(self, name: str, phase: str, *, exit_code: int | None = None) -> None:
        """What a kubelet (kwok) would report."""
        for (_, pod_name), pod in self.pods.items():
            if pod_name == name:
                pod["status"] = {
                    "phase": phase,
                    "conditions": [{"type": "Ready", "status": "True"}],
                }
                if exit_code is not None:
                    pod["status"]["containerStatuses"] = [
                        {"name": "c", "state": {"terminated": {"exitCode": exit_code}}}
                    ]
                self._stamp(pod)
                return
        raise KeyError(name)

    def add_custom(self, plural: str, body: Manifest) -> None:
        meta = body["metadata"]
        self.custom[(plural, meta.get("namespace", ""), meta["name"])] = copy.deepcopy(body)

    def create_pod(self, pod: Manifest) -> Manifest:
        self._maybe_fail("create_pod")
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if key in self.pods:
            raise AlreadyExists(409, "AlreadyExists", f"pod {key} exists")
        stored = self._stamp(copy.deepcopy(pod))
        stored["metadata"]["uid"] = f"pod-{key[1]}"
        stored["status"] = {"phase": "Pending"}
        self.pods[key] = stored
        return copy.deepcopy(stored)

    def bind_pod(self, binding: Binding) -> None:
        self._maybe_fail("bind")
        key = (binding["metadata"]["namespace"], binding["metadata"]["name"])
        pod = self.pods.get(key)
        if pod is None:
            raise NotFound(404, "NotFound", f"pod {key}")
        if pod["spec"].get("nodeName"):
            raise Conflict(409, "Conflict", "pod already assigned")
        pod["spec"]["nodeName"] = binding["target"]["name"]
        self._stamp(pod)

    def delete_pod(
        self, *, namespace: str, name: str, grace_period_s: int, uid: str | None = None
    ) -> None:
        self._maybe_fail("delete_pod")
        self.calls.append(f"delete_pod {name} grace={grace_period_s}")
        if (namespace, name) not in self.pods:
            raise NotFound(404, "NotFound", name)
        del self.pods[(namespace, name)]

    def create_service(self, service: Manifest) -> None:
        self._maybe_fail("create_service")
        key = (service["metadata"]["namespace"], service["metadata"]["name"])
        if key in self.services:
            raise AlreadyExists(409, "AlreadyExists", "exists")
        self.services[key] = copy.deepcopy(service)

    def patch_status(
        self, *, plural: str, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> Manifest:
        self._maybe_fail("patch_status")
        key = (plural, namespace or "", name)
        if key not in self.custom:
            raise NotFound(404, "NotFound", name)
        body = self.custom[key]
        body["status"] = merge_patch(body.get("status") or {}, status)
        self._stamp(body)
        return copy.deepcopy(body)

    def delete_custom_object(self, *, plural: str, namespace: str, name: str, uid: str) -> None:
        self._maybe_fail("delete_custom_object")
        self.custom.pop((plural, namespace, name), None)

    def create_event(self, event: Event) -> None:
        self._maybe_fail("create_event")
        self.events.append(event)

    def get_lease(self, *, namespace: str, name: str) -> Manifest | None:
        self._maybe_fail("get_lease")
        found = self.leases.get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def create_lease(self, lease: Manifest) -> Manifest:
        self._maybe_fail("create_lease")
        key = (lease["metadata"]["namespace"], lease["metadata"]["name"])
        if key in self.leases:
            raise AlreadyExists(409, "AlreadyExists", "lease exists")
        self.leases[key] = self._stamp(copy.deepcopy(lease))
        return copy.deepcopy(self.leases[key])

    def replace_lease(self, lease: Manifest) -> Manifest:
        self._maybe_fail("replace_lease")
        key = (lease["metadata"]["namespace"], lease["metadata"]["name"])
        current = self.leases.get(key)
        if current is None:
            raise NotFound(404, "NotFound", "lease")
        if current["metadata"]["resourceVersion"] != lease["metadata"].get("resourceVersion"):
            raise Conflict(409, "Conflict", "the object has been modified")
        self.leases[key] = self._stamp(copy.deepcopy(lease))
        return copy.deepcopy(self.leases[key])

    def list_custom_objects(self, *, plural: str) -> Listing:
        items = [
            copy.deepcopy(body) for (kind, _, _), body in self.custom.items() if kind == plural
        ]
        return Listing(items=items, resource_version=str(next(self._versions)))

    def list_nodes(self) -> Listing:
        return Listing(
            items=[copy.deepcopy(n) for n in self.nodes.values()],
            resource_version=str(next(self._versions)),
        )

    def list_pods(self, *, label_selector: str) -> Listing:
        return Listing(
            items=[copy.deepcopy(pod) for pod in self.pods.values()],
            resource_version=str(next(self._versions)),
        )
