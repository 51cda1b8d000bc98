"""A GPUPool of fresh kwok nodes with the operator running as a subprocess, for one test.

Every scenario gets its own pool label, nodes, tenant namespaces, Lease and
``--pool`` filter, so scenarios never see each other's (or other tests')
objects. The operator is stopped (by its PID) and everything is deleted in
``close``; ``kill -9`` and restarts are available for crash tests.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tests.integration.conftest import Kubectl

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], T | None], *, timeout: float, expected: str) -> T:
    """Poll ``condition`` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = condition()
        if last is not None and last is not False:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {expected}")
        time.sleep(0.25)


def holds_for(condition: Callable[[], bool], *, duration: float, expected: str) -> None:
    """Check ``condition`` continuously for ``duration`` seconds; fail the moment it breaks."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not condition():
            raise AssertionError(f"expected {expected} for {duration:.0f}s, but it broke")
        time.sleep(0.25)


def node_manifest(name: str, *, pool: str, gpus: int, rack: str) -> dict[str, Any]:
    capacity = {"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "gpupool.io/pool": pool,
                "gpupool.io/gpu-model": "NVIDIA-A100-SXM4-80GB",
                "gpupool.io/rack": rack,
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def job_manifest(
    name: str,
    *,
    namespace: str,
    pool: str,
    replicas: int = 1,
    gpus: int = 1,
    priority: str = "normal",
    bid: float | None = None,
    complete_after: str | None = "600s",
    terminate_after: str | None = None,
    extra_annotations: dict[str, str] | None = None,
    checkpoint: bool = True,
) -> dict[str, Any]:
    annotations = dict(extra_annotations or {})
    if complete_after is not None:
        annotations["gpupool.io/complete-after"] = complete_after
    if terminate_after is not None:
        annotations["gpupool.io/terminate-after"] = terminate_after
    spec: dict[str, Any] = {
        "pool": pool,
        "priorityClass": priority,
        "replicas": replicas,
        "gpusPerReplica": gpus,
        "template": {
            "metadata": {"annotations": annotations},
            "spec": {
                "containers": [
                    {
                        "name": "trainer",
                        "image": "gpupool/trainer:dev",
                        "command": ["python", "-m", "gpupool_workloads.launch", "--"],
                    }
                ]
            },
        },
    }
    if bid is not None:
        spec["bid"] = {"maxPricePerGPUHour": bid}
    if checkpoint:
        spec["checkpoint"] = {"path": "/ckpt", "everySeconds": 60}
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


class Scenario:
    """One pool, its nodes and tenants, and the operator process scheduling it."""

    def __init__(
        self,
        kubectl: Kubectl,
        env: dict[str, str],
        workdir: Path,
        *,
        nodes: int,
        gpus_per_node: int = 8,
        tenants: list[dict[str, Any]],
        grace_s: int = 5,
        min_runtime_s: int = 0,
        interval_s: int = 1,
        reserve_price: float = 0.05,
    ) -> None:
        self.kubectl = kubectl
        self.env = env
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:6]
        self.pool = f"e2e-{self.run_id}"
        self.node_names = [f"{self.pool}-n{i}" for i in range(nodes)]
        self.tenant_terms = [
            {**terms, "namespace": f"{terms['namespace']}-{self.run_id}"} for terms in tenants
        ]
        self.namespaces = [terms["namespace"] for terms in self.tenant_terms]
        self.extra_namespaces: list[str] = []
        self.operator: subprocess.Popen[bytes] | None = None
        self.replicas: dict[str, subprocess.Popen[bytes]] = {}
        self.operator_logs: list[Path] = []
        self.lease = f"gpupool-{self.run_id}"
        items: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            for ns in self.namespaces
        ]
        items += [
            node_manifest(name, pool=self.pool, gpus=gpus_per_node, rack=f"rack-{i // 2}")
            for i, name in enumerate(self.node_names)
        ]
        items.append(
            {
                "apiVersion": "gpupool.io/v1alpha1",
                "kind": "GPUPool",
                "metadata": {"name": self.pool},
                "spec": {
                    "nodeSelector": {"matchLabels": {"gpupool.io/pool": self.pool}},
                    "tenants": self.tenant_terms,
                    "auction": {
                        "intervalSeconds": interval_s,
                        "reservePricePerGPUHour": reserve_price,
                    },
                    "preemption": {
                        "gracePeriodSeconds": grace_s,
                        "minRuntimeSeconds": min_runtime_s,
                    },
                },
            }
        )
        self.apply({"apiVersion": "v1", "kind": "List", "items": items})
        self.kubectl("wait", "--for=condition=Ready", "node", *self.node_names, "--timeout=60s")

    def ns(self, tenant: str) -> str:
        """The scenario's namespace for a tenant given by its short name."""
        return f"{tenant}-{self.run_id}"

    def apply(self, manifest: dict[str, Any], *, check: bool = True) -> Any:
        return self.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=check)

    def submit(self, name: str, *, tenant: str, **fields: Any) -> None:
        self.apply(job_manifest(name, namespace=self.ns(tenant), pool=self.pool, **fields))

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", kind, name, "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        result = self.kubectl(*args, check=False)
        if result.returncode != 0:
            return None
        found: dict[str, Any] = json.loads(result.stdout)
        return found

    def kubectl_json(self, *args: str) -> dict[str, Any]:
        output = ["-o", "json"] if "--raw" not in args else []
        found: dict[str, Any] = json.loads(self.kubectl(*args, *output).stdout)
        return found

    def job(self, name: str, tenant: str) -> dict[str, Any]:
        found = self.get("trainingjob", name, self.ns(tenant))
        assert found is not None, f"TrainingJob {name} not found"
        return found

    def status(self, name: str, tenant: str) -> dict[str, Any]:
        status: dict[str, Any] = self.job(name, tenant).get("status") or {}
        return status

    def pods(self, namespace: str, *, job: str | None = None) -> list[dict[str, Any]]:
        args = ["get", "pods", "-n", namespace, "-o", "json"]
        if job is not None:
            args += ["-l", f"gpupool.io/job={job}"]
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args).stdout)["items"]
        return items

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        result = self.kubectl(
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            f"involvedObject.name={name}",
            "-o",
            "json",
        )
        items: list[dict[str, Any]] = json.loads(result.stdout)["items"]
        return items

    def wait_phase(
        self, name: str, tenant: str, phase: str, *, timeout: float = 60
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status(name, tenant)
            return status if status.get("phase") == phase else None

        try:
            return wait_for(reached, timeout=timeout, expected=f"{name} to be {phase}")
        except AssertionError as error:
            raise AssertionError(f"{error}; status now {self.status(name, tenant)}") from None

    # -- the operator process ---------------------------------------------------------

    def start_operator(self, *extra: str, identity: str | None = None) -> subprocess.Popen[bytes]:
        log = self.workdir / f"operator-{len(self.operator_logs)}.log"
        self.operator_logs.append(log)
        identity = identity or f"op-{len(self.operator_logs)}"
        with log.open("wb") as sink:
            self.operator = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gpupool",
                    "run",
                    "--pool",
                    self.pool,
                    "--lease-name",
                    self.lease,
                    "--lease-duration",
                    "5",
                    "--metrics-port",
                    "0",
                    "--identity",
                    identity,
                    *extra,
                ],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        self.replicas[identity] = self.operator
        return self.operator

    def lease_holder(self) -> str | None:
        lease = self.get("lease", self.lease, "default")
        holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
        return str(holder) if holder else None

    def kill_operator(self, sig: int = signal.SIGKILL, *, identity: str | None = None) -> None:
        process = self.operator if identity is None else self.replicas.get(identity)
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def stop_operator(self) -> None:
        for identity in list(self.replicas):
            self.kill_operator(signal.SIGTERM, identity=identity)

    def log_tail(self, lines: int = 60) -> str:
        if not self.operator_logs:
            return ""
        text = self.operator_logs[-1].read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def close(self) -> None:
        """Stop the operator, then remove everything; nodes last, so that kwok can still
        finish the pods' graceful deletion (pods on a deleted node linger until pod GC)."""
        self.stop_operator()
        self.kubectl("delete", "gpupools", self.pool, "--wait=false", check=False)
        namespaces = self.namespaces + self.extra_namespaces
        for namespace in namespaces:
            self.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        self.kubectl("wait", "--for=delete", "namespace", *namespaces, "--timeout=60s", check=False)
        self.kubectl("delete", "node", *self.node_names, "--wait=false", check=False)
        self.kubectl("delete", "lease", self.lease, "-n", "default", "--wait=false", check=False)


@contextmanager
def scenario(
    kubectl: Kubectl, env: dict[str, str], workdir: Path, **options: Any
) -> Iterator[Scenario]:
    """A running scenario; on failure the operator's log tail is printed."""
    built = Scenario(kubectl, env, workdir, **options)
    try:
        built.start_operator()
        yield built
    except BaseException:
        print(f"--- operator log ({built.pool}) ---\n{built.log_tail()}", file=sys.stderr)
        raise
    finally:
        built.close()


def worker_env(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env", [])}


def operator_env(cluster_env: dict[str, str]) -> dict[str, str]:
    return {**cluster_env, "PYTHONUNBUFFERED": "1"}
