"""Real torch workers on the local control plane, run by the process node (e2e/processnode).

The process node plays the kubelet for two nodes of a fresh pool: pods bound to them
run as local processes. Through the operator, a 2-replica TrainingJob applied with
kubectl trains across two worker pods to completion, and an InferenceService replica
serves the model it wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import torch

from gpupool_workloads import checkpoint
from gpupool_workloads.models import ModelSpec, build_model
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import wait_for

REPO = Path(__file__).resolve().parents[2]
PORTS_ANNOTATION = "processnode.gpupool.io/ports"
TRAINER_FLAGS = [
    "--model", "mlp", "--synthetic-samples", "1024", "--batch-size", "32", "--epochs", "2",
    "--lr", "0.003", "--checkpoint-every-steps", "10", "--log-every-steps", "8",
]  # fmt: skip


class ProcessPool:
    """A GPUPool whose two nodes are played by a process node, and a tenant namespace."""

    def __init__(self, kubectl: Kubectl, env: dict[str, str], workdir: Path) -> None:
        self.kubectl = kubectl
        self.env = env
        self.workdir = workdir
        run_id = uuid.uuid4().hex[:6]
        self.pool = f"proc-{run_id}"
        self.namespace = f"proc-ml-{run_id}"
        self.nodes = [f"{self.pool}-p0", f"{self.pool}-p1"]
        self.state_dir = workdir / "processnode"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start_process_node(self) -> None:
        args = [arg for node in self.nodes for arg in ("--node", node)]
        self._start(
            "processnode",
            [sys.executable, "-m", "e2e.processnode", *args, "--pool", self.pool, "--gpus", "1",
             "--state-dir", str(self.state_dir)],
        )  # fmt: skip
        wait_for(
            lambda: self.kubectl("get", "node", *self.nodes, check=False).returncode == 0,
            timeout=60,
            expected="the process node to register its nodes",
        )
        self.kubectl("wait", "--for=condition=Ready", "node", *self.nodes, "--timeout=60s")

    def start_operator(self) -> None:
        self._start(
            "operator",
            [sys.executable, "-m", "gpupool", "run", "--pool", self.pool,
             "--lease-name", f"gpupool-{self.pool}", "--lease-duration", "5",
             "--metrics-port", "0", "--identity", "op-processnode"],
        )  # fmt: skip

    def _start(self, name: str, command: list[str]) -> None:
        with (self.workdir / f"{name}.log").open("wb") as sink:
            self.processes.append(
                subprocess.Popen(
                    command,
                    env={**self.env, "PYTHONUNBUFFERED": "1"},
                    cwd=REPO,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def apply(self, manifest: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(
            self.kubectl("get", kind, name, "-n", self.namespace, "-o", "json").stdout
        )
        return found

    def pods(self, selector: str) -> list[dict[str, Any]]:
        out = self.kubectl("get", "pods", "-n", self.namespace, "-l", selector, "-o", "json")
        items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
        return items

    def pod_phase(self, name: str) -> str | None:
        found = self.kubectl("get", "pod", name, "-n", self.namespace, "-o", "json", check=False)
        if found.returncode != 0:
            return None
        phase: str | None = json.loads(found.stdout).get("status", {}).get("phase")
        return phase

    def pod_log(self, name: str) -> str:
        path = self.state_dir / "logs" / f"{self.namespace}_{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def claim_dir(self, claim: str) -> Path:
        return self.state_dir / "pvc" / self.namespace / claim

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name} ---\n"
            + "\n".join(path.read_text(errors="replace").splitlines()[-40:])
            for path in sorted(self.workdir.glob("*.log"))
        )

    def close(self) -> None:
        operator_first = list(reversed(self.processes))
        # The operator stops first; deleting the namespace then drains the pods through the
        # process node (graceful deletion), which stops last.
        for process in operator_first[:-1]:
            _stop(process)
        self.kubectl("delete", "gpupool", self.pool, "--wait=false", check=False)
        self.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)
        self.kubectl("wait", "--for=delete", "namespace", self.namespace, "--timeout=90s",
                     check=False)  # fmt: skip
        for process in operator_first[-1:]:
            _stop(process)
        self.kubectl("delete", "node", *self.nodes, "--wait=false", check=False)
        for node in self.nodes:
            self.kubectl("delete", "lease", node, "-n", "kube-node-lease", "--wait=false",
                         check=False)  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything it left behind
    process.wait(timeout=10)


@pytest.fixture
def process_pool(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> Iterator[ProcessPool]:
    pool = ProcessPool(kubectl, cluster_env, tmp_path)
    try:
        pool.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": pool.namespace}})
        pool.start_process_node()
        yield pool
    except BaseException:
        print(pool.logs(), file=sys.stderr)
        raise
    finally:
        pool.close()


def bare_pod(name: str, *, node: str, namespace: str, code: str, grace: int = 30) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": grace,
            "containers": [{"name": "main", "image": "none", "command": ["python", "-c", code]}],
        },
    }


def terminated_code(pod: dict[str, Any]) -> int | None:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        terminated = status.get("state", {}).get("terminated")
        if terminated is not None:
            return int(terminated["exitCode"])
    return None


def test_pods_run_as_processes_report_exit_codes_and_drain_on_delete(
    process_pool: ProcessPool,
) -> None:
    ns, (node_a, node_b) = process_pool.namespace, process_pool.nodes
    process_pool.apply(bare_pod("ok", node=node_a, namespace=ns, code="print('hi')"))
    process_pool.apply(bare_pod("bad", node=node_b, namespace=ns, code="raise SystemExit(3)"))
    preemptible = (
        "import signal, sys, threading\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(75))\n"
        "print('waiting', flush=True)\n"
        "threading.Event().wait()\n"
    )
    process_pool.apply(bare_pod("victim", node=node_b, namespace=ns, code=preemptible))

    wait_for(lambda: process_pool.pod_phase("ok") == "Succeeded", timeout=60, expected="ok done")
    wait_for(lambda: process_pool.pod_phase("bad") == "Failed", timeout=60, expected="bad failed")
    assert terminated_code(process_pool.get("pod", "ok")) == 0
    assert terminated_code(process_pool.get("pod", "bad")) == 3
    assert process_pool.pod_log("ok").strip() == "hi"

    wait_for(lambda: "waiting" in process_pool.pod_log("victim"), timeout=60, expected="victim up")
    victim = process_pool.get("pod", "victim")
    assert victim["status"]["podIP"] == "127.0.0.1"
    assert {c["type"]: c["status"] for c in victim["status"]["conditions"]}["Ready"] == "True"
    # Graceful deletion: SIGTERM, the exit code is recorded, then the object goes.
    process_pool.kubectl("delete", "pod", "victim", "-n", ns, "--timeout=60s")
    assert process_pool.pod_phase("victim") is None


def test_a_training_job_trains_on_two_process_pods_and_a_service_serves_its_model(
    process_pool: ProcessPool,
) -> None:
    process_pool.start_operator()
    ns = process_pool.namespace
    process_pool.apply(
        {
            "apiVersion": "gpupool.io/v1alpha1",
            "kind": "GPUPool",
            "metadata": {"name": process_pool.pool},
            "spec": {
                "nodeSelector": {"matchLabels": {"gpupool.io/pool": process_pool.pool}},
                "tenants": [{"namespace": ns, "guaranteedGPUs": 2}],
                "auction": {"intervalSeconds": 1},
                "preemption": {"gracePeriodSeconds": 30, "minRuntimeSeconds": 0},
            },
        }
    )
    process_pool.apply(
        {
            "apiVersion": "gpupool.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "mlp", "namespace": ns},
            "spec": {
                "pool": process_pool.pool,
                "priorityClass": "normal",
                "replicas": 2,
                "gpusPerReplica": 1,
                "torch": {"nprocPerNode": 1, "backend": "gloo"},
                "checkpoint": {"path": "/ckpt", "everySeconds": 600},
                "failurePolicy": {"maxRestarts": 0},
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "trainer",
                                "image": "gpupool-workloads:dev",
                                "command": ["python", "-m", "gpupool_workloads.launch", "--"],
                                "args": TRAINER_FLAGS,
                                "volumeMounts": [{"name": "ckpt", "mountPath": "/ckpt"}],
                            }
                        ],
                        "volumes": [
                            {"name": "ckpt", "persistentVolumeClaim": {"claimName": "ckpt"}}
                        ],
                    }
                },
            },
        }
    )

    def job_phase() -> str | None:
        phase = (process_pool.get("trainingjob", "mlp").get("status") or {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_for(job_phase, timeout=300, expected="the TrainingJob to finish") == "Succeeded"
    workers = process_pool.pods("gpupool.io/job=mlp")
    assert len(workers) == 2
    assert {pod["spec"]["nodeName"] for pod in workers} == set(process_pool.nodes)
    assert {terminated_code(pod) for pod in workers} == {0}
    logs = "".join(process_pool.pod_log(pod["metadata"]["name"]) for pod in workers)
    assert "rank=0/2" in logs and "rank=1/2" in logs, logs

    latest = checkpoint.latest_checkpoint(process_pool.claim_dir("ckpt"))
    assert latest is not None
    saved = checkpoint.read_checkpoint(latest)
    assert saved["progress"] == {**saved["progress"], "step": 32, "completed": True}
    assert saved["world_size"] == 2
    # Each worker's exit report (termination message) names the final checkpoint,
    # and the operator recorded its time in the job's status.
    for pod in workers:
        message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
        assert json.loads(message)["lastCheckpointStep"] == 32, message
    recorded = process_pool.get("trainingjob", "mlp")["status"]["lastCheckpointTime"]
    recorded_at = datetime.fromisoformat(recorded.replace("Z", "+00:00")).timestamp()
    assert 0 <= recorded_at - int(saved["saved_at_unix"]) <= 5, (recorded, saved["saved_at_unix"])

    # The model it wrote, served by an InferenceService from the same claim.
    process_pool.apply(
        {
            "apiVersion": "gpupool.io/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": "mlp-serve", "namespace": ns},
            "spec": {
                "pool": process_pool.pool,
                "priorityClass": "normal",
                "replicas": 1,
                "minReplicas": 1,
                "maxReplicas": 1,
                "gpusPerReplica": 1,
                "model": {"uri": "pvc://ckpt"},  # the claim the job checkpointed to
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "server",
                                "image": "gpupool-workloads:dev",
                                "command": ["python", "-m", "gpupool_workloads.server"],
                                "ports": [{"name": "http", "containerPort": 8080}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/readyz", "port": 8080},
                                    "periodSeconds": 1,
                                },
                            }
                        ],
                    }
                },
            },
        }
    )

    def ready_replicas() -> int | None:
        status = process_pool.get("inferenceservice", "mlp-serve").get("status") or {}
        return status.get("readyReplicas") or None

    wait_for(ready_replicas, timeout=180, expected="a ready inference replica")
    (server,) = process_pool.pods("gpupool.io/inference-service=mlp-serve")
    port = json.loads(server["metadata"]["annotations"][PORTS_ANNOTATION])["8080"]
    inputs = [[0.1 * i for i in range(32)], [1.0] * 32]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/predict", data=json.dumps({"inputs": inputs}).encode()
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        outputs = json.loads(response.read())["outputs"]
    model = build_model(ModelSpec.from_dict(saved["model"]))
    model.load_state_dict(saved["model_state"])
    expected = model.eval()(torch.tensor(inputs))
    assert torch.allclose(torch.tensor(outputs), expected, atol=1e-5)
