"""The few API calls a process node makes, as raw JSON (over the official client's pool)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from kubernetes import client, config

from gpupool.k8s.client import RestKubeClient
from gpupool.k8s.errors import ApiError

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
WATCH_TIMEOUT_SECONDS = 240


class NodeApi:
    def __init__(self, api_client: Any) -> None:
        self._api_client = api_client
        self._rest = RestKubeClient(api_client)

    @classmethod
    def from_kubeconfig(cls) -> NodeApi:
        configuration = client.Configuration()
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        configuration.connection_pool_maxsize = 16
        return cls(client.ApiClient(configuration))

    def close(self) -> None:
        self._api_client.close()

    # -- nodes and leases ------------------------------------------------------------

    def ensure_node(self, manifest: Mapping[str, Any]) -> None:
        try:
            self._rest.request("POST", "/api/v1/nodes", body=dict(manifest))
        except ApiError as error:
            if error.status != 409:
                raise
            name = manifest["metadata"]["name"]
            patch = {"metadata": {"labels": manifest["metadata"]["labels"]}}
            self._rest.request(
                "PATCH", f"/api/v1/nodes/{name}", body=patch, content_type=MERGE_PATCH
            )

    def patch_node_status(self, name: str, body: Mapping[str, Any]) -> None:
        self._rest.request(
            "PATCH", f"/api/v1/nodes/{name}/status", body=dict(body), content_type=STRATEGIC_PATCH
        )

    def delete_node(self, name: str) -> None:
        try:
            self._rest.request("DELETE", f"/api/v1/nodes/{name}")
        except ApiError as error:
            if error.status != 404:
                raise

    def renew_lease(self, lease: Mapping[str, Any]) -> None:
        meta = lease["metadata"]
        path = f"/apis/coordination.k8s.io/v1/namespaces/{meta['namespace']}/leases"
        try:
            self._rest.request(
                "PATCH",
                f"{path}/{meta['name']}",
                body={"spec": lease["spec"]},
                content_type=MERGE_PATCH,
            )
        except ApiError as error:
            if error.status != 404:
                raise
            self._rest.request("POST", path, body=dict(lease))

    # -- pods ---------------------------------------------------------------------------

    def list_pods(self, node: str) -> tuple[list[dict[str, Any]], str]:
        page = self._rest.request(
            "GET", "/api/v1/pods", query={"fieldSelector": f"spec.nodeName={node}"}
        )
        return list(page.get("items") or []), str(page["metadata"]["resourceVersion"])

    def watch_pods(self, node: str, resource_version: str) -> Iterator[dict[str, Any]]:
        """Watch events (``type``, ``object``) of pods on ``node`` until the server ends it."""
        query = {
            "fieldSelector": f"spec.nodeName={node}",
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_TIMEOUT_SECONDS),
        }
        _, url, headers, body, post = self._api_client.param_serialize(
            method="GET",
            resource_path="/api/v1/pods",
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self._api_client.call_api(
            "GET", url, header_params=headers, body=body, post_params=post,
            _request_timeout=WATCH_TIMEOUT_SECONDS + 30,
        )  # fmt: skip
        raw = response.response
        try:
            if int(raw.status) != 200:
                raise ApiError(int(raw.status), "WatchFailed", raw.read().decode(errors="replace"))
            pending = b""
            for chunk in raw.stream(65536, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            raw.release_conn()

    def patch_pod_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self._rest.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{name}/status",
            body={"status": dict(status)},
            content_type=STRATEGIC_PATCH,
        )

    def annotate_pod(self, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
        self._rest.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{name}",
            body={"metadata": {"annotations": dict(annotations)}},
            content_type=MERGE_PATCH,
        )

    def delete_pod_now(self, namespace: str, name: str, uid: str) -> None:
        """The kubelet's last word on a pod: remove the object (grace 0, this very pod)."""
        try:
            self._rest.delete_pod(namespace=namespace, name=name, grace_period_s=0, uid=uid)
        except ApiError as error:
            if error.status not in (404, 409):
                raise
