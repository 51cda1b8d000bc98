"""Two real worker pods (launcher + trainer processes, gloo) with the operator's environment."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from gpupool_workloads import checkpoint, contract

from .support import (
    free_port,
    launch_pods,
    pod_environment,
    wait_for_trained_steps,
)

GRACE_SECONDS = 30.0
"""The pool's preemption.gracePeriodSeconds in these tests."""

SAMPLES, BATCH = 1024, 32
FLAGS = [
    "--model", "mlp",
    "--synthetic-samples", str(SAMPLES),
    "--batch-size", str(BATCH),
    "--lr", "0.003",
]  # fmt: skip


def summaries(directory: Path, ranks: int) -> list[dict[str, Any]]:
    return [json.loads((directory / f"summary-{rank}.json").read_text()) for rank in range(ranks)]


def two_pod_envs(tmp_path: Path) -> list[dict[str, str]]:
    master_port = free_port()
    return [
        pod_environment(
            replicas=2,
            replica=replica,
            checkpoint_dir=tmp_path / "ckpt",
            master_port=master_port,
            metrics_port=free_port(),
        )
        for replica in range(2)
    ]


def test_two_pods_learn_agree_and_checkpoint(tmp_path: Path) -> None:
    envs = two_pod_envs(tmp_path)
    flags = [
        *FLAGS,
        "--epochs", "3",
        "--checkpoint-every-steps", "20",
        "--log-every-steps", "8",
        "--summary-file", str(tmp_path / "summary-{rank}.json"),
    ]  # fmt: skip
    pods = launch_pods(envs, flags, tmp_path)
    try:
        codes = [pod.wait(timeout=120) for pod in pods]
    finally:
        for pod in pods:
            pod.kill()
    assert codes == [contract.EXIT_SUCCEEDED] * 2, "\n".join(pod.log() for pod in pods)

    rank0, rank1 = summaries(tmp_path, 2)
    steps = 3 * SAMPLES // (BATCH * 2)
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["step"] == rank1["step"] == steps
    assert rank0["parameter_digest"] == rank1["parameter_digest"]
    assert rank0["last_loss"] < 0.8 * rank0["first_loss"], rank0

    saved = checkpoint.list_checkpoints(tmp_path / "ckpt")
    assert saved, "no checkpoint written"
    assert len(rank0["checkpoint_seconds"]) == steps // 20 + 1  # periodic + final
    final = checkpoint.read_checkpoint(saved[-1])
    assert final["progress"]["step"] == steps
    assert final["progress"]["completed"] is True
    assert final["reason"] == "final"
    assert len(final["rng"]) == 2
    assert not list((tmp_path / "ckpt").glob(".*.tmp")), "temporary files left behind"


def test_sigterm_checkpoints_in_grace_and_relaunch_resumes(tmp_path: Path) -> None:
    envs = two_pod_envs(tmp_path)
    for index, env in enumerate(envs):
        env[contract.ENV_TERMINATION_LOG] = str(tmp_path / f"termination-log-{index}")
    started = time.time()
    flags = [*FLAGS, "--epochs", "1000", "--summary-file", str(tmp_path / "summary-{rank}.json")]
    pods = launch_pods(envs, flags, tmp_path)
    try:
        wait_for_trained_steps(envs[0], 20, timeout=120)
        signalled_at = time.monotonic()
        pods[1].send(signal.SIGTERM)  # the pod that does not write checkpoints
        codes = [pod.wait(timeout=GRACE_SECONDS) for pod in pods]
        stopped_after = time.monotonic() - signalled_at
    finally:
        for pod in pods:
            pod.kill()
    logs = "\n".join(pod.log() for pod in pods)
    assert codes == [contract.EXIT_PREEMPTED] * 2, logs
    assert stopped_after < GRACE_SECONDS

    latest = checkpoint.latest_checkpoint(tmp_path / "ckpt")
    assert latest is not None
    saved = checkpoint.read_checkpoint(latest)
    preempted_step = saved["progress"]["step"]
    assert saved["reason"] == "preempted"
    assert preempted_step >= 20
    assert [s["step"] for s in summaries(tmp_path, 2)] == [preempted_step] * 2
    # Both pods (also the one that writes no checkpoints) report that checkpoint.
    for index in range(2):
        report = json.loads((tmp_path / f"termination-log-{index}").read_text())
        assert report["lastCheckpointStep"] == preempted_step
        reported_at = datetime.fromisoformat(report["lastCheckpointTime"]).timestamp()
        assert int(started) <= reported_at <= time.time()

    # Relaunch as one pod (a smaller gang): it resumes from the preempted step.
    relaunch = pod_environment(
        replicas=1,
        replica=0,
        checkpoint_dir=tmp_path / "ckpt",
        master_port=free_port(),
        metrics_port=free_port(),
        attempt=1,
    )
    extra_steps = 10
    resumed_flags = [*flags, "--max-steps", str(preempted_step + extra_steps)]
    (tmp_path / "relaunch").mkdir()
    (pod,) = launch_pods([relaunch], resumed_flags, tmp_path / "relaunch")
    try:
        code = pod.wait(timeout=120)
    finally:
        pod.kill()
    assert code == contract.EXIT_SUCCEEDED, pod.log()
    (resumed,) = summaries(tmp_path, 1)
    assert resumed["world_size"] == 1
    assert resumed["start_step"] == preempted_step
    assert resumed["step"] == preempted_step + extra_steps
    # Sample-based progress: two ranks' batches per step before, one rank's after.
    assert resumed["samples_total"] == (preempted_step * 2 + extra_steps) * BATCH
    assert f"resumed from {latest}" in pod.log()
