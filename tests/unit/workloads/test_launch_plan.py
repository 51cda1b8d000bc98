"""The launcher's pure parts: pod env -> process env, worker exit codes -> the pod's."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from gpupool_workloads import contract
from gpupool_workloads.errors import ConfigError
from gpupool_workloads.launch import (
    exit_code_for,
    plan_node,
    worker_command,
    worker_environments,
)

from .support import pod_environment

PREEMPTED = contract.EXIT_PREEMPTED


def no_gpus() -> int:
    return 0


def test_the_operator_pod_env_becomes_torchrun_process_env(tmp_path: Path) -> None:
    pod_env = pod_environment(
        replicas=3, replica=2, checkpoint_dir=tmp_path, master_port=29999, metrics_port=9400,
        nproc_per_node=2,
    )  # fmt: skip
    plan = plan_node(pod_env, nproc_override=None, visible_gpus=no_gpus)
    envs = worker_environments(pod_env, plan)
    picked = [
        {key: env[key] for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                                   "GROUP_RANK", "GROUP_WORLD_SIZE", "NODE_RANK")}
        for env in envs
    ]  # fmt: skip
    assert picked == [
        {"RANK": "4", "LOCAL_RANK": "0", "WORLD_SIZE": "6", "LOCAL_WORLD_SIZE": "2",
         "GROUP_RANK": "2", "GROUP_WORLD_SIZE": "3", "NODE_RANK": "2"},
        {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "6", "LOCAL_WORLD_SIZE": "2",
         "GROUP_RANK": "2", "GROUP_WORLD_SIZE": "3", "NODE_RANK": "2"},
    ]  # fmt: skip
    assert {env["MASTER_PORT"] for env in envs} == {"29999"}
    assert {env["OMP_NUM_THREADS"] for env in envs} == {"1"}
    assert {env[contract.ENV_CHECKPOINT_DIR] for env in envs} == {str(tmp_path)}


@pytest.mark.parametrize(
    ("raw", "gpus", "expected"),
    [("4", 0, 4), ("auto", 8, 8), ("auto", 0, 1), (None, 2, 2)],
)
def test_nproc_per_node(raw: str | None, gpus: int, expected: int) -> None:
    env = {"WORLD_SIZE": "1", "NODE_RANK": "0"} | ({"NPROC_PER_NODE": raw} if raw else {})
    assert plan_node(env, nproc_override=None, visible_gpus=lambda: gpus).nproc_per_node == expected


@pytest.mark.parametrize(
    "env",
    [
        {"WORLD_SIZE": "2", "NODE_RANK": "0"},  # no MASTER_ADDR for a gang
        {"WORLD_SIZE": "2", "NODE_RANK": "2", "MASTER_ADDR": "x"},
        {"WORLD_SIZE": "two", "NODE_RANK": "0", "MASTER_ADDR": "x"},
        {"WORLD_SIZE": "1", "NODE_RANK": "0", "NPROC_PER_NODE": "0"},
    ],
)
def test_bad_pod_env_is_a_config_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        plan_node(env, nproc_override=None, visible_gpus=no_gpus)


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([0, 0], 0),
        ([PREEMPTED, PREEMPTED], PREEMPTED),
        ([0, PREEMPTED], PREEMPTED),  # one finished its last step, the other was signalled
        ([PREEMPTED, 1], 1),
        ([3, -signal.SIGTERM], 3),  # the first failure decides
        ([-signal.SIGKILL, 0], 128 + signal.SIGKILL),
        ([2], 2),
    ],
)
def test_pod_exit_code(codes: list[int], expected: int) -> None:
    assert exit_code_for(codes) == expected


def test_worker_command_defaults_to_the_trainer() -> None:
    trainer = [sys.executable, "-m", "gpupool_workloads.trainer"]
    assert worker_command([]) == trainer
    assert worker_command(["--", "--model", "mlp"]) == [*trainer, "--model", "mlp"]
    assert worker_command(["--", "python", "train.py"]) == ["python", "train.py"]
