"""Trainer throughput with and without our wrapper, and checkpoint write time.

Both runs go through the launcher with the same number of local processes (gloo on
CPU, NCCL with ``--backend nccl``), the same model, data, sampler, optimizer and
batch. "Wrapped" is the real trainer with periodic checkpoints, a metrics endpoint
and the per-step control all-reduce; "bare" is :mod:`bare_ddp`. Runs alternate and
the best of the repeats counts for each, which favours neither side.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpupool_workloads import checkpoint
from gpupool_workloads.bench.stats import median


@dataclass(frozen=True, kw_only=True)
class TrainerBenchConfig:
    nproc: int
    steps: int
    batch_size: int
    model: str
    model_kwargs: str
    checkpoint_every_seconds: float
    repeats: int
    backend: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _launch(command_tail: list[str], env: dict[str, str], summary: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "gpupool_workloads.launch", "--", *command_tail]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command} exited {result.returncode}:\n{result.stderr[-4000:]}")
    loaded: dict[str, Any] = json.loads(summary.read_text())
    return loaded


def run_trainer_bench(config: TrainerBenchConfig) -> dict[str, Any]:
    common = [
        "--model", config.model,
        "--model-kwargs", config.model_kwargs,
        "--batch-size", str(config.batch_size),
        "--max-steps", str(config.steps),
        "--synthetic-samples", str(config.batch_size * config.nproc * 64),
    ]  # fmt: skip
    bare_rates: list[float] = []
    wrapped_rates: list[float] = []
    checkpoint_seconds: list[float] = []
    checkpoint_bytes = 0
    with tempfile.TemporaryDirectory(prefix="gpupool-bench-") as scratch:
        env = {
            **os.environ,
            "WORLD_SIZE": "1",
            "NODE_RANK": "0",
            "NPROC_PER_NODE": str(config.nproc),
            "MASTER_ADDR": "127.0.0.1",
        }

        def bare(repeat: int) -> None:
            template = str(Path(scratch) / f"bare-{repeat}-{{rank}}.json")
            summary = _launch(
                [sys.executable, "-m", "gpupool_workloads.bench.bare_ddp", *common,
                 "--summary-file", template, "--backend", config.backend],
                {**env, "MASTER_PORT": str(_free_port())},
                Path(template.replace("{rank}", "0")),
            )  # fmt: skip
            bare_rates.append(float(summary["samples_per_second"]))

        def wrapped(repeat: int) -> None:
            nonlocal checkpoint_bytes
            ckpt_dir = Path(scratch) / f"ckpt-{repeat}"
            template = str(Path(scratch) / f"wrapped-{repeat}-{{rank}}.json")
            summary = _launch(
                [*common, "--summary-file", template, "--log-every-steps", "50",
                 "--backend", config.backend, "--epochs", str(config.steps)],
                {
                    **env,
                    "MASTER_PORT": str(_free_port()),
                    "GPUPOOL_CHECKPOINT_DIR": str(ckpt_dir),
                    "GPUPOOL_CHECKPOINT_EVERY_SECONDS": str(config.checkpoint_every_seconds),
                    "GPUPOOL_METRICS_PORT": str(_free_port()),
                },
                Path(template.replace("{rank}", "0")),
            )  # fmt: skip
            wrapped_rates.append(float(summary["samples_per_second"]))
            checkpoint_seconds.extend(summary["checkpoint_seconds"])
            latest = checkpoint.latest_checkpoint(ckpt_dir)
            checkpoint_bytes = latest.stat().st_size if latest else 0

        for repeat in range(config.repeats):  # alternate who goes first
            first, second = (bare, wrapped) if repeat % 2 == 0 else (wrapped, bare)
            first(repeat)
            second(repeat)
    best_bare, best_wrapped = max(bare_rates), max(wrapped_rates)
    return {
        "processes": config.nproc,
        "model": config.model,
        "model_kwargs": json.loads(config.model_kwargs),
        "global_batch": config.batch_size * config.nproc,
        "steps": config.steps,
        "checkpoint_every_seconds": config.checkpoint_every_seconds,
        "bare_samples_per_second": bare_rates,
        "wrapped_samples_per_second": wrapped_rates,
        "wrapped_over_bare_ratio": median(wrapped_rates) / median(bare_rates),
        "wrapped_over_bare_ratio_best": best_wrapped / best_bare,
        "checkpoints_written": len(checkpoint_seconds),
        "checkpoint_seconds_median": median(checkpoint_seconds) if checkpoint_seconds else None,
        "checkpoint_seconds_max": max(checkpoint_seconds) if checkpoint_seconds else None,
        "checkpoint_bytes": checkpoint_bytes,
    }
