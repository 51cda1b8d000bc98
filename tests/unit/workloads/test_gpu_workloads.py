"""The trainer (NCCL) and the inference server on a real CUDA GPU; skip with the reason elsewhere.

The CPU tests beside this file pin the gloo backend and the CPU device; these run the
same programs the way a GPU pod runs them: the operator's environment with one GPU per
replica, ``backend: nccl``, the server on ``cuda``.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from gpupool_workloads import checkpoint, contract

from .support import (
    WorkerProcess,
    free_port,
    http_get,
    http_post_json,
    launch_pods,
    pod_environment,
    wait_for,
    wait_for_trained_steps,
)
from .test_server_process import reference_model, train_a_checkpoint

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch"),
]

SAMPLES, BATCH = 2048, 64
FLAGS = [
    "--model", "mlp",
    "--synthetic-samples", str(SAMPLES),
    "--batch-size", str(BATCH),
    "--lr", "0.003",
    "--epochs", "1000",  # SIGTERM or --max-steps ends each run
]  # fmt: skip


def gpu_pod(tmp_path: Path, *, attempt: int) -> dict[str, str]:
    env = pod_environment(
        replicas=1,
        replica=0,
        checkpoint_dir=tmp_path / "ckpt",
        master_port=free_port(),
        metrics_port=free_port(),
        attempt=attempt,
        backend="nccl",
        gpu_indices=[0],
    )
    env["CUDA_VISIBLE_DEVICES"] = "0"  # what the device plugin gives a one-GPU container
    return env


def test_nccl_trainer_learns_on_the_gpu_is_preempted_and_resumes(tmp_path: Path) -> None:
    summary = str(tmp_path / "summary-{rank}.json")
    env = gpu_pod(tmp_path, attempt=0)
    (pod,) = launch_pods([env], [*FLAGS, "--summary-file", summary], tmp_path)
    try:
        wait_for_trained_steps(env, 100, timeout=180)
        pod.send(signal.SIGTERM)
        code = pod.wait(timeout=60)
    finally:
        pod.kill()
    assert code == contract.EXIT_PREEMPTED, pod.log()
    report = json.loads((tmp_path / "summary-0.json").read_text())
    assert report["last_loss"] < 0.8 * report["first_loss"], report

    latest = checkpoint.latest_checkpoint(tmp_path / "ckpt")
    assert latest is not None
    saved = checkpoint.read_checkpoint(latest)
    preempted_step = saved["progress"]["step"]
    assert (saved["reason"], preempted_step) == ("preempted", report["step"])
    # The RNG state of every rank holds a CUDA generator: the steps ran on the GPU.
    assert all(state["cuda"] is not None for state in saved["rng"]), saved["rng"]

    (tmp_path / "relaunch").mkdir()
    resumed_flags = [*FLAGS, "--max-steps", str(preempted_step + 10), "--summary-file", summary]
    (pod,) = launch_pods([gpu_pod(tmp_path, attempt=1)], resumed_flags, tmp_path / "relaunch")
    try:
        code = pod.wait(timeout=180)
    finally:
        pod.kill()
    assert code == contract.EXIT_SUCCEEDED, pod.log()
    resumed = json.loads((tmp_path / "summary-0.json").read_text())
    assert (resumed["start_step"], resumed["step"]) == (preempted_step, preempted_step + 10)
    assert f"resumed from {latest}" in pod.log()


@pytest.fixture
def gpu_server(tmp_path: Path) -> Iterator[tuple[str, WorkerProcess]]:
    train_a_checkpoint(tmp_path / "models")
    port = free_port()
    command = [
        sys.executable, "-m", "gpupool_workloads.server", "--model", str(tmp_path / "models"),
        "--host", "127.0.0.1", "--port", str(port), "--device", "cuda",
    ]  # fmt: skip
    process = WorkerProcess(command, {}, tmp_path / "server.log")
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.kill()


def test_server_answers_from_the_gpu_like_the_cpu_model(
    tmp_path: Path, gpu_server: tuple[str, WorkerProcess]
) -> None:
    url, process = gpu_server
    wait_for(lambda: http_get(f"{url}/readyz")[0] == 200, timeout=120, what=process.log_path)
    status, info = http_get(f"{url}/v1/model")
    assert status == 200, info
    assert json.loads(info)["device"].startswith("cuda"), info

    inputs = [[(row * 32 + col) / 512 - 1 for col in range(32)] for row in range(8)]
    status, body = http_post_json(f"{url}/v1/predict", {"inputs": inputs})
    assert status == 200, body
    expected = reference_model(tmp_path / "models")(torch.tensor(inputs))
    assert torch.allclose(torch.tensor(body["outputs"]), expected, atol=1e-4), (body, expected)
