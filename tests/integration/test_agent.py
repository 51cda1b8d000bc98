"""gpupool-agent in simulated mode against the real local control plane.

The agent runs as a subprocess under its own ServiceAccount (only the RBAC it
documents: nodes get/list/patch, pods list) and covers two kwok nodes this
module creates with a unique label, so it never touches the nodes of other
tests. It must publish telemetry on both nodes, follow a pod bound to GPUs 0
and 1, report an XID 79 injected through its fault file as an unhealthy GPU,
and serve ``gpupool_gpu_*`` metrics.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from gpupool.scheduling.model import NodeName
from gpupool.telemetry.annotations import explain_missing_telemetry, parse_node_telemetry
from gpupool.telemetry.faults import Fault, FaultKind, dump_fault_script
from gpupool.telemetry.health import gpu_health
from gpupool.telemetry.model import NodeTelemetry
from tests.integration.conftest import Kubectl

T = TypeVar("T")
RUN = uuid.uuid4().hex[:6]
SELECTOR_LABEL = "gpupool.io/agent-test"
NODES = [f"agent-{RUN}-{i}" for i in range(2)]
SERVICE_ACCOUNT = f"gpupool-agent-{RUN}"


def wait_for(condition: Callable[[], T | None], *, timeout: float, expected: str) -> T:
    """Poll ``condition`` until it returns a value; fail with what was expected."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {expected}")
        time.sleep(0.2)


def node_manifest(name: str) -> dict[str, object]:
    capacity = {"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": "8"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                SELECTOR_LABEL: RUN,
                "kubernetes.io/hostname": name,
                "gpupool.io/pool": f"agent-test-{RUN}",
                "gpupool.io/gpu-model": "NVIDIA-H100-80GB-HBM3",
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def rbac_manifests() -> list[dict[str, object]]:
    role_name = f"gpupool-agent-{RUN}"
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": "default"},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role_name},
            "rules": [
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role_name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role_name,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": "default"}
            ],
        },
    ]


def as_list(items: list[dict[str, object]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


@pytest.fixture(scope="module")
def agent_nodes(kubectl: Kubectl) -> Iterator[list[str]]:
    kubectl("apply", "-f", "-", input=as_list([node_manifest(name) for name in NODES]))
    yield NODES
    kubectl("delete", "node", *NODES, "--wait=false", check=False)


@pytest.fixture(scope="module")
def agent_kubeconfig(kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A kubeconfig for the agent's ServiceAccount, holding only the documented RBAC."""
    manifests = as_list(rbac_manifests())
    kubectl("apply", "-f", "-", input=manifests)
    token = kubectl(
        "create", "token", SERVICE_ACCOUNT, "-n", "default", "--duration=1h"
    ).stdout.strip()
    admin = json.loads(kubectl("config", "view", "--minify", "--raw", "-o", "json").stdout)
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": "agent", "user": {"token": token}}],
        "contexts": [{"name": "agent", "context": {"cluster": "local", "user": "agent"}}],
        "current-context": "agent",
    }
    path = tmp_path_factory.mktemp("agent") / "kubeconfig"
    path.write_text(json.dumps(config))
    yield path
    kubectl("delete", "-f", "-", "--wait=false", input=manifests, check=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def agent(
    agent_nodes: list[str],
    agent_kubeconfig: Path,
    cluster_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, int]]:
    """The running agent: (its fault file, its metrics port)."""
    workdir = tmp_path_factory.mktemp("agent-run")
    faults = workdir / "faults.json"
    port = free_port()
    log = (workdir / "agent.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gpupool.telemetry.agent",
            "--simulated",
            f"--nodes-selector={SELECTOR_LABEL}={RUN}",
            f"--faults={faults}",
            f"--metrics-port={port}",
            "--metrics-address=127.0.0.1",
            "--interval-s=0.5",
        ],
        env={**cluster_env, "KUBECONFIG": str(agent_kubeconfig)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield faults, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        output = (workdir / "agent.log").read_text()
        print(f"--- agent log (exit {process.returncode}) ---\n{output[-4000:]}")
        assert process.returncode == 0, "the agent must stop cleanly on SIGTERM"
        assert "Traceback" not in output


def published(kubectl: Kubectl, node: str) -> NodeTelemetry | None:
    body = json.loads(kubectl("get", "node", node, "-o", "json").stdout)
    return parse_node_telemetry(body["metadata"].get("annotations") or {})


def test_agent_publishes_every_selected_node(kubectl: Kubectl, agent: tuple[Path, int]) -> None:
    for node in NODES:
        report = wait_for(
            lambda node=node: published(kubectl, node),  # type: ignore[misc]
            timeout=30,
            expected=f"telemetry annotation on {node}",
        )
        assert report.node == node
        assert [gpu.index for gpu in report.gpus] == list(range(8))
        assert all(gpu_health(gpu).healthy for gpu in report.gpus)
        assert report.gpus[0].memory_total_mib == 80 * 1024
        assert abs(report.timestamp - time.time()) < 30
    annotations = json.loads(kubectl("get", "node", NODES[0], "-o", "json").stdout)["metadata"][
        "annotations"
    ]
    assert explain_missing_telemetry(annotations) == ""
    assert annotations["gpupool.io/telemetry-heartbeat"].endswith("Z")


def test_memory_follows_a_pod_bound_to_gpus(kubectl: Kubectl, agent: tuple[Path, int]) -> None:
    name = f"worker-{RUN}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"gpupool.io/role": "worker"},
            "annotations": {"gpupool.io/gpu-indices": "0,1"},
        },
        "spec": {
            "nodeName": NODES[1],
            "containers": [{"name": "trainer", "image": "example.invalid/trainer:1"}],
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:

        def loaded() -> NodeTelemetry | None:
            report = published(kubectl, NODES[1])
            if report is None:
                return None
            used = [gpu.memory_used_mib for gpu in report.gpus]
            return report if used[:3] == [int(0.9 * 81920)] * 2 + [0] else None

        report = wait_for(loaded, timeout=30, expected=f"GPUs 0,1 of {NODES[1]} loaded by {name}")
        busy = report.gpus[0].sm_utilization_pct
        assert busy is not None and busy > 80
    finally:
        kubectl("delete", "pod", name, "-n", "default", "--wait=false", check=False)


def test_injected_xid_79_marks_the_gpu_unhealthy_and_counts_in_metrics(
    kubectl: Kubectl, agent: tuple[Path, int]
) -> None:
    faults, port = agent
    node = NODES[0]
    wait_for(lambda: published(kubectl, node), timeout=30, expected=f"first report of {node}")
    injected = time.monotonic()
    fault = Fault(at_s=0, node=NodeName(node), gpu=3, kind=FaultKind.XID, xid=79)
    staged = faults.with_suffix(".tmp")
    staged.write_text(dump_fault_script([fault]))
    os.replace(staged, faults)

    def unhealthy() -> NodeTelemetry | None:
        report = published(kubectl, node)
        gpu = report.gpu(3) if report is not None else None
        return report if gpu is not None and not gpu_health(gpu).healthy else None

    report = wait_for(unhealthy, timeout=30, expected=f"GPU 3 of {node} reported unhealthy")
    latency = time.monotonic() - injected
    print(f"fault file -> annotation shows GPU unhealthy: {latency:.2f}s")
    gpu = report.gpu(3)
    assert gpu is not None
    assert gpu_health(gpu).reason == "XID 79 (GPU has fallen off the bus)"
    assert [g.index for g in report.gpus if not gpu_health(g).healthy] == [3]

    def metrics_text() -> str | None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text: str = response.read().decode()
        return text if 'xid="79"' in text else None

    text = wait_for(metrics_text, timeout=10, expected="the XID in the agent's metrics")
    lines = text.splitlines()
    for family in (
        "gpupool_gpu_utilization_ratio",
        "gpupool_gpu_memory_used_bytes",
        "gpupool_gpu_temperature_celsius",
        "gpupool_gpu_power_watts",
        "gpupool_gpu_healthy",
        "gpupool_gpu_xid_errors_total",
    ):
        assert any(line.startswith(family + "{") for line in lines), family
    healthy_gpu3 = [
        line
        for line in lines
        if line.startswith("gpupool_gpu_healthy{")
        and f'node="{node}"' in line
        and 'gpu="3"' in line
    ]
    assert len(healthy_gpu3) == 1 and healthy_gpu3[0].endswith(" 0.0")
    xid = [line for line in lines if line.startswith("gpupool_gpu_xid_errors_total{")]
    assert len(xid) == 1 and 'xid="79"' in xid[0] and xid[0].endswith(" 1.0")
