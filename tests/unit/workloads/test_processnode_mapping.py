"""The process node's pure parts: a pod's process on this host, and the statuses it writes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from e2e.processnode.pod_process import CannotRun, HostContext, process_spec
from e2e.processnode.pod_status import exit_code_of, running_status, terminated_status
from e2e.processnode.ports import PortTable
from e2e.processnode.termination import termination_message

from .support import pod_environment

STATE = Path("/var/lib/pn")
CTX = HostContext(
    state_dir=STATE, python="/venv/bin/python", node_name="p0", base_env={"PATH": "/bin"}
)


def worker_pod(env: dict[str, str], *, uid: str = "u1", **container: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "job-0-w0",
            "namespace": "ml",
            "uid": uid,
            "annotations": {"gpupool.io/gpu-indices": "0,1"},
        },
        "spec": {
            "hostname": "job-0-w0",
            "containers": [
                {
                    "name": "trainer",
                    "command": ["python", "-m", "gpupool_workloads.launch", "--"],
                    "args": ["--checkpoint-dir", "/ckpt/run"],
                    "env": [{"name": key, "value": value} for key, value in env.items()]
                    + [{"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "volumeMounts": [
                        {"name": "ckpt", "mountPath": "/ckpt"},
                        {"name": "token", "mountPath": "/var/run/secrets/token"},
                    ],
                    **container,
                }
            ],
            "volumes": [
                {"name": "ckpt", "persistentVolumeClaim": {"claimName": "shared"}},
                {"name": "token", "projected": {"sources": []}},
            ],
        },
    }


def operator_env(tmp_path: Path, replica: int) -> dict[str, str]:
    """The operator's real worker env (its builder), before any host mapping."""
    env = pod_environment(
        replicas=2, replica=replica, checkpoint_dir=Path("/ckpt"), master_port=29500,
        metrics_port=9400,
    )  # fmt: skip
    env["MASTER_ADDR"] = "job-0-w0.job-workers.ml.svc"  # undo the helper's own mapping
    return env


def test_a_worker_pod_becomes_a_local_process(tmp_path: Path) -> None:
    ports = PortTable()
    spec = process_spec(worker_pod(operator_env(tmp_path, 0)), CTX, ports)
    assert spec.argv == [
        "/venv/bin/python", "-m", "gpupool_workloads.launch", "--",
        "--checkpoint-dir", "/var/lib/pn/pvc/ml/shared/run",
    ]  # fmt: skip
    env = spec.env
    assert env["MASTER_ADDR"] == "127.0.0.1"
    assert env["GPUPOOL_CHECKPOINT_DIR"] == "/var/lib/pn/pvc/ml/shared"
    assert env["ME"] == "job-0-w0"
    assert env["PATH"] == "/bin"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["MASTER_PORT"] == str(spec.ports[29500])
    assert env["GPUPOOL_METRICS_PORT"] == str(spec.ports[9400])
    assert spec.cwd == STATE / "pods" / "u1" / "work"
    assert STATE / "pods" / "u1" / "volumes" / "token" in spec.directories
    assert env["GPUPOOL_TERMINATION_LOG"] == str(spec.termination_log)
    assert spec.termination_log == STATE / "pods" / "u1" / "termination-log"
    assert spec.termination_log.parent in spec.directories


def test_a_gang_shares_its_rendezvous_port_and_nothing_else(tmp_path: Path) -> None:
    ports = PortTable()
    first = process_spec(worker_pod(operator_env(tmp_path, 0), uid="a"), CTX, ports)
    second = process_spec(worker_pod(operator_env(tmp_path, 1), uid="b"), CTX, ports)
    assert first.env["MASTER_PORT"] == second.env["MASTER_PORT"]
    assert first.env["GPUPOOL_METRICS_PORT"] != second.env["GPUPOOL_METRICS_PORT"]
    other_job = operator_env(tmp_path, 0) | {"MASTER_ADDR": "other-0-w0.other-workers.ml.svc"}
    third = process_spec(worker_pod(other_job, uid="c"), CTX, ports)
    assert third.env["MASTER_PORT"] != first.env["MASTER_PORT"]


def test_a_server_pod_gets_its_declared_port_and_model_claim() -> None:
    pod = worker_pod(
        {"GPUPOOL_MODEL_URI": "pvc://models/resnet/ckpt.pt"},
        command=["python", "-m", "gpupool_workloads.server"],
        args=["--port", "8080"],
        ports=[{"containerPort": 8080}],
    )
    spec = process_spec(pod, CTX, PortTable())
    host_port = spec.ports[8080]
    assert spec.argv[-2:] == ["--port", str(host_port)]
    assert spec.env["GPUPOOL_SERVING_PORT"] == str(host_port)
    assert spec.env["GPUPOOL_MODEL_URI"] == "/var/lib/pn/pvc/ml/models/resnet/ckpt.pt"


def test_a_pod_without_a_command_cannot_run() -> None:
    pod = worker_pod({}, command=[], args=[])
    with pytest.raises(CannotRun, match="no command"):
        process_spec(pod, CTX, PortTable())


def test_statuses() -> None:
    pod = worker_pod({})
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    running = running_status(pod, started=started, ready=False, restarts=0)
    assert running["phase"] == "Running" and running["podIP"] == "127.0.0.1"
    assert {c["type"]: c["status"] for c in running["conditions"]}["Ready"] == "False"
    done = terminated_status(pod, exit_code=75, started=started, finished=started, restarts=0)
    assert done["phase"] == "Failed"
    terminated = done["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (75, "Error")
    assert (
        terminated_status(pod, exit_code=0, started=started, finished=started, restarts=0)["phase"]
        == "Succeeded"
    )
    assert exit_code_of(-9) == 137 and exit_code_of(3) == 3


def test_the_termination_message_is_the_file_or_on_error_the_log_tail(tmp_path: Path) -> None:
    message_file, log = tmp_path / "termination-log", tmp_path / "pod.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    message_file.write_text('{"lastCheckpointStep":7}\n')

    def read(code: int, policy: str | None = "FallbackToLogsOnError") -> str:
        return termination_message(
            message_file=message_file, log_path=log, exit_code=code, policy=policy
        )

    assert read(75) == '{"lastCheckpointStep":7}\n'
    message_file.write_text("")
    assert read(0) == ""  # succeeded: no fallback
    assert read(1, policy=None) == ""  # policy File: no fallback
    tail = read(1).splitlines()
    assert tail[-1] == "line 99" and len(tail) <= 80
    message_file.unlink()
    assert read(1, policy=None) == ""
