"""The agent's door to the API server: write a node's annotations, list nodes and pods.

Built on the operator's raw-JSON client (:class:`gpupool.k8s.client.RestKubeClient`),
so only ``gpupool.k8s`` touches the Kubernetes client library. Every method may
raise :class:`gpupool.k8s.errors.ApiError`.

RBAC the agent needs (cluster-scoped): ``nodes``: get, list, patch; in simulated
mode also ``pods``: list.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TextIO

from gpupool.k8s.bodies import Manifest
from gpupool.k8s.client import MERGE_PATCH, RestKubeClient
from gpupool.scheduling.model import NodeName


class TelemetryWriter(Protocol):
    def write_node_annotations(self, *, node: NodeName, annotations: Mapping[str, str]) -> None:
        """Merge the annotations into the Node (other annotations untouched)."""
        ...


class ClusterReader(Protocol):
    """What the simulated mode reads: the kwok nodes and the pods bound to them."""

    def list_nodes(self, *, label_selector: str) -> Sequence[Manifest]: ...

    def list_running_pods(self, *, label_selector: str) -> Sequence[Manifest]: ...


class ApiTelemetryPublisher:
    """:class:`TelemetryWriter` and :class:`ClusterReader` over the API server."""

    def __init__(self, client: RestKubeClient) -> None:
        self._client = client

    def write_node_annotations(self, *, node: NodeName, annotations: Mapping[str, str]) -> None:
        self._client.request(
            "PATCH",
            f"/api/v1/nodes/{node}",
            body={"metadata": {"annotations": dict(annotations)}},
            content_type=MERGE_PATCH,
        )

    def list_nodes(self, *, label_selector: str) -> Sequence[Manifest]:
        return self._list("/api/v1/nodes", {"labelSelector": label_selector})

    def list_running_pods(self, *, label_selector: str) -> Sequence[Manifest]:
        return self._list(
            "/api/v1/pods",
            {"labelSelector": label_selector, "fieldSelector": "status.phase=Running"},
        )

    def _list(self, path: str, query: Mapping[str, str]) -> list[Manifest]:
        params = {key: value for key, value in query.items() if value}
        params["limit"] = "500"
        items: list[Manifest] = []
        while True:
            page: Any = self._client.request("GET", path, query=params)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            params["continue"] = token


class PrintingWriter:
    """:class:`TelemetryWriter` for ``--dry-run``: one JSON line per write on stdout."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def write_node_annotations(self, *, node: NodeName, annotations: Mapping[str, str]) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(json.dumps({"node": node, "annotations": dict(annotations)}) + "\n")
        stream.flush()
