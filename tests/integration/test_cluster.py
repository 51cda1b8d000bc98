"""The local control plane is real: RBAC enforced, GPU nodes ready, kwok stages work."""

from __future__ import annotations

import json
import time
import uuid

from tests.integration.conftest import Kubectl


def wait_for_jsonpath(
    kubectl: Kubectl, args: list[str], jsonpath: str, expected: str, *, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = kubectl(*args, "-o", f"jsonpath={jsonpath}", check=False).stdout
        if seen == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"{' '.join(args)} {jsonpath}: expected {expected!r}, saw {seen!r}")


def test_gpu_nodes_are_ready_with_capacity_and_topology_labels(kubectl: Kubectl) -> None:
    nodes = json.loads(kubectl("get", "nodes", "-l", "type=kwok", "-o", "json").stdout)["items"]
    assert len(nodes) >= 2
    for node in nodes:
        assert int(node["status"]["allocatable"]["nvidia.com/gpu"]) >= 1
        labels = node["metadata"]["labels"]
        for key in (
            "gpupool.io/pool",
            "gpupool.io/gpu-model",
            "gpupool.io/nvlink-domain",
            "gpupool.io/rack",
        ):
            assert labels.get(key), f"{node['metadata']['name']} lacks label {key}"
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"


def test_rbac_is_enforced(kubectl: Kubectl) -> None:
    allowed = kubectl(
        "auth",
        "can-i",
        "list",
        "secrets",
        "--as=system:serviceaccount:default:default",
        check=False,
    )
    assert allowed.stdout.strip() == "no", allowed.stdout + allowed.stderr
    assert kubectl("auth", "can-i", "list", "secrets").stdout.strip() == "yes"


def test_kwok_completes_a_bound_pod_after_its_annotated_duration(kubectl: Kubectl) -> None:
    name = f"stage-{uuid.uuid4().hex[:6]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {"gpupool.io/complete-after": "1s"}},
        "spec": {"schedulerName": "gpupool", "containers": [{"name": "c", "image": "none"}]},
    }
    kubectl("create", "-f", "-", input=json.dumps(pod))
    try:
        node = kubectl(
            "get", "nodes", "-l", "type=kwok", "-o", "jsonpath={.items[0].metadata.name}"
        ).stdout
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        kubectl(
            "create",
            "--raw",
            f"/api/v1/namespaces/default/pods/{name}/binding",
            "-f",
            "-",
            input=json.dumps(binding),
        )
        wait_for_jsonpath(kubectl, ["get", "pod", name], "{.status.phase}", "Succeeded")
    finally:
        kubectl("delete", "pod", name, "--ignore-not-found", "--wait=false")
