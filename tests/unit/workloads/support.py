"""Helpers for workload tests: deadlines, free ports, worker pods as local processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from gpupool.k8s.bodies import ObjectRef
from gpupool.k8s.worker_pod import CheckpointSettings, TorchSettings, WorkerGang, worker_pod

T = TypeVar("T")

LAUNCH_COMMAND = [sys.executable, "-m", "gpupool_workloads.launch", "--"]


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body); (0, error) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


def http_post_json(url: str, payload: Any, timeout: float = 30.0) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def metric_value(exposition: str, name: str) -> float | None:
    """Value of an unlabelled sample ``name`` in a Prometheus text exposition."""
    for line in exposition.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


def wait_for_trained_steps(pod_env: dict[str, str], steps: int, *, timeout: float) -> float:
    """Wait until the pod's metrics (local rank 0) report global step >= ``steps``."""
    metrics_url = f"http://127.0.0.1:{pod_env['GPUPOOL_METRICS_PORT']}/metrics"

    def trained_steps() -> float | None:
        status, body = http_get(metrics_url, timeout=2)
        step = metric_value(body, "gpupool_trainer_step") if status == 200 else None
        return step if step is not None and step >= steps else None

    return wait_for(trained_steps, timeout=timeout, what=f"{steps} training steps on /metrics")


# TODO(lead): when e2e/processnode lands, share its host mapping instead of this one.
def pod_environment(
    *,
    replicas: int,
    replica: int,
    checkpoint_dir: Path,
    master_port: int,
    metrics_port: int,
    nproc_per_node: int = 1,
    checkpoint_every_seconds: int = 600,
    attempt: int = 0,
    backend: str = "gloo",
    gpu_indices: Sequence[int] = (),
) -> dict[str, str]:
    """The environment the operator's pod builder gives replica ``replica``, run on this host.

    The pod comes from ``gpupool.k8s.worker_pod`` itself. Two things change because all
    "pods" share this host's network, as a process node would change them: the
    rendezvous Service name resolves to 127.0.0.1, and each pod gets its own metrics port.
    """
    gang = WorkerGang(
        job=ObjectRef(
            api_version="gpupool.io/v1alpha1",
            kind="TrainingJob",
            name="wl-test",
            namespace="default",
            uid="uid-wl-test",
        ),
        pool="cpu",
        replicas=replicas,
        gpus_per_replica=len(gpu_indices),
        attempt=attempt,
        torch=TorchSettings(nproc_per_node=nproc_per_node, port=master_port, backend=backend),
        checkpoint=CheckpointSettings(
            path=str(checkpoint_dir), every_seconds=checkpoint_every_seconds
        ),
        template={"spec": {"containers": [{"name": "worker", "command": LAUNCH_COMMAND}]}},
    )
    pod = worker_pod(gang, replica=replica, node=f"node-{replica}", gpu_indices=list(gpu_indices))
    container = pod["spec"]["containers"][0]
    env = {entry["name"]: entry["value"] for entry in container["env"]}
    env["MASTER_ADDR"] = "127.0.0.1"
    env["GPUPOOL_METRICS_PORT"] = str(metrics_port)
    return env


class WorkerProcess:
    """One pod's command as a local process group; always ended by :meth:`kill` in a finally.

    Its own session, like a container: :meth:`kill` ends the launcher and the workers
    it started, even when the launcher cannot forward anything any more.
    """

    def __init__(self, command: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            list(command),
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def send(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"pid {self.process.pid} still running after {timeout}s; log:\n{self.log()}"
            ) from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the group outlives its leader
        if self.process.poll() is None:
            self.process.wait(10)
        self._log.close()


def launch_pods(
    envs: Sequence[dict[str, str]], trainer_flags: Sequence[str], log_dir: Path
) -> list[WorkerProcess]:
    command = [*LAUNCH_COMMAND, *trainer_flags]
    return [
        WorkerProcess(command, env, log_dir / f"pod-{index}.log") for index, env in enumerate(envs)
    ]
