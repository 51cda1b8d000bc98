"""The operator's only door to the Kubernetes API.

:class:`KubeClient` is the protocol the rest of the operator codes against (the
tests use a fake implementing it); :class:`RestKubeClient` implements it over the
official client's HTTP machinery with raw JSON bodies, so every body is exactly
the dict our builders made (no model round-trips; the ``Binding`` response
deserialisation quirk of the generated client cannot bite).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client, config

from gpupool.k8s import names
from gpupool.k8s.bodies import Binding, Event, Manifest
from gpupool.k8s.errors import ApiError, error_for

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


class KubeClient(Protocol):
    """Writes and reads the operator performs; every method may raise :class:`ApiError`."""

    def create_pod(self, pod: Manifest) -> Manifest:
        """The created pod as the API server stored it."""
        ...

    def bind_pod(self, binding: Binding) -> None: ...

    def delete_pod(
        self, *, namespace: str, name: str, grace_period_s: int, uid: str | None = None
    ) -> None:
        """Delete gracefully; ``uid`` makes it a no-op (404) for a recreated namesake."""
        ...

    def create_service(self, service: Manifest) -> None: ...

    def patch_status(
        self, *, plural: str, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> Manifest:
        """Merge-patch ``status`` of one of our custom objects; the object after the patch."""
        ...

    def delete_custom_object(self, *, plural: str, namespace: str, name: str, uid: str) -> None: ...

    def create_event(self, event: Event) -> None: ...

    def get_lease(self, *, namespace: str, name: str) -> Manifest | None: ...

    def create_lease(self, lease: Manifest) -> Manifest: ...

    def replace_lease(self, lease: Manifest) -> Manifest:
        """PUT with ``metadata.resourceVersion``: raises ``Conflict`` if someone else wrote."""
        ...

    def list_custom_objects(self, *, plural: str) -> Listing: ...

    def list_nodes(self) -> Listing: ...

    def list_pods(self, *, label_selector: str) -> Listing: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    """A list call's items and the resourceVersion the list was read at."""

    items: Sequence[Manifest]
    resource_version: str


def custom_path(*, plural: str, namespace: str | None, name: str | None = None) -> str:
    base = f"/apis/{names.GROUP}/{names.VERSION}"
    scoped = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return f"{scoped}/{name}" if name else scoped


class RestKubeClient:
    """:class:`KubeClient` over ``kubernetes.client.ApiClient`` (thread-safe, pooled)."""

    def __init__(self, api_client: Any, *, request_timeout_s: float = 30.0) -> None:
        self._api = api_client
        self._timeout = request_timeout_s

    @classmethod
    def from_environment(
        cls, *, pool_size: int = 16, in_cluster: bool | None = None
    ) -> RestKubeClient:
        """From ``$KUBECONFIG`` / ``~/.kube/config``, or the service account in a pod."""
        configuration = client.Configuration()
        if in_cluster is None:
            try:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        elif in_cluster:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        configuration.connection_pool_maxsize = pool_size
        return cls(client.ApiClient(configuration))

    def close(self) -> None:
        self._api.close()

    # -- the protocol ---------------------------------------------------------------

    def create_pod(self, pod: Manifest) -> Manifest:
        namespace = pod["metadata"]["namespace"]
        created: Manifest = self.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=pod)
        return created

    def bind_pod(self, binding: Binding) -> None:
        meta = binding["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding"
        self.request("POST", path, body=dict(binding))

    def delete_pod(
        self, *, namespace: str, name: str, grace_period_s: int, uid: str | None = None
    ) -> None:
        options: Manifest = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": grace_period_s,
            "propagationPolicy": "Background",
        }
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        self.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", body=options)

    def create_service(self, service: Manifest) -> None:
        namespace = service["metadata"]["namespace"]
        self.request("POST", f"/api/v1/namespaces/{namespace}/services", body=service)

    def patch_status(
        self, *, plural: str, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> Manifest:
        path = custom_path(plural=plural, namespace=namespace, name=name) + "/status"
        patched: Manifest = self.request(
            "PATCH", path, body={"status": dict(status)}, content_type=MERGE_PATCH
        )
        return patched

    def delete_custom_object(self, *, plural: str, namespace: str, name: str, uid: str) -> None:
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
            "preconditions": {"uid": uid},
        }
        self.request(
            "DELETE", custom_path(plural=plural, namespace=namespace, name=name), body=options
        )

    def create_event(self, event: Event) -> None:
        namespace = event["metadata"]["namespace"]
        self.request("POST", f"/api/v1/namespaces/{namespace}/events", body=dict(event))

    def get_lease(self, *, namespace: str, name: str) -> Manifest | None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        try:
            found: Manifest = self.request("GET", path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        return found

    def create_lease(self, lease: Manifest) -> Manifest:
        namespace = lease["metadata"]["namespace"]
        created: Manifest = self.request(
            "POST", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", body=lease
        )
        return created

    def replace_lease(self, lease: Manifest) -> Manifest:
        meta = lease["metadata"]
        path = f"/apis/coordination.k8s.io/v1/namespaces/{meta['namespace']}/leases/{meta['name']}"
        replaced: Manifest = self.request("PUT", path, body=lease)
        return replaced

    def list_custom_objects(self, *, plural: str) -> Listing:
        return self._list(custom_path(plural=plural, namespace=None))

    def list_nodes(self) -> Listing:
        return self._list("/api/v1/nodes")

    def list_pods(self, *, label_selector: str) -> Listing:
        return self._list("/api/v1/pods", query={"labelSelector": label_selector})

    # -- plumbing -----------------------------------------------------------------

    def _list(self, path: str, *, query: Mapping[str, str] | None = None) -> Listing:
        items: list[Manifest] = []
        params = dict(query or {})
        params["limit"] = "500"
        version = ""
        while True:
            page: Manifest = self.request("GET", path, query=params)
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            version = version or str(meta.get("resourceVersion") or "")
            token = meta.get("continue")
            if not token:
                return Listing(items=tuple(items), resource_version=version)
            params["continue"] = token

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = JSON,
    ) -> Any:
        """One HTTP request with a JSON body; the decoded JSON answer, or :class:`ApiError`."""
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        serialized = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        _, url, header_params, request_body, post_params = serialized
        try:
            response = self._api.call_api(
                method,
                url,
                header_params=header_params,
                body=request_body,
                post_params=post_params,
                _request_timeout=self._timeout,
            )
        except Exception as error:  # connection refused, TLS, timeouts: one failure type
            if isinstance(error, ApiError):
                raise
            raise ApiError(0, type(error).__name__, str(error)) from error
        data = response.read()
        status = int(response.status)
        if not 200 <= status < 300:
            raise _decode_error(status, data)
        if not data:
            return None
        return json.loads(data)


def _decode_error(status: int, data: bytes | None) -> ApiError:
    reason, message = "", (data or b"").decode(errors="replace")
    try:
        decoded = json.loads(data or b"{}")
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        reason = str(decoded.get("reason", ""))
        message = str(decoded.get("message", message))
    return error_for(status, reason, message)
