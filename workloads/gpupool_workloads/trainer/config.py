"""Trainer configuration: the operator's environment first, command-line flags override."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gpupool_workloads import contract
from gpupool_workloads.envparse import env_float, env_int, env_int_list, env_str
from gpupool_workloads.errors import ConfigError
from gpupool_workloads.models import DEFAULT_INPUT_SHAPES, ModelSpec

AmpMode = Literal["auto", "off", "bf16", "fp16"]
Backend = Literal["auto", "gloo", "nccl"]
OptimizerName = Literal["adamw", "sgd"]


@dataclass(frozen=True, kw_only=True)
class TrainerConfig:
    model: ModelSpec
    data_path: Path | None
    """A ``.pt`` file holding ``{"inputs": Tensor[N, ...], "targets": LongTensor[N]}``;
    None means the synthetic dataset."""
    synthetic_samples: int
    batch_size: int
    """Per worker process; the global batch is ``batch_size * world size``."""
    epochs: int
    max_steps: int | None
    """Stop after this many global optimizer steps (counted across restarts)."""
    optimizer: OptimizerName
    learning_rate: float
    amp: AmpMode
    backend: Backend
    seed: int
    checkpoint_dir: Path | None
    checkpoint_every_seconds: float
    checkpoint_every_steps: int
    keep_checkpoints: int
    metrics_port: int | None
    log_every_steps: int
    summary_file: str | None
    """JSON summary written by every rank on exit; ``{rank}`` in the path is replaced."""
    timeout_seconds: float
    """Rendezvous and collective timeout."""
    job: str
    restart_count: int
    gpu_indices: tuple[int, ...]


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gpupool_workloads.trainer",
        description="gpupool DDP trainer: checkpoints, resumes, exits 75 when preempted.",
    )
    model = parser.add_argument_group("model and data")
    model.add_argument("--model", default="mlp", help="mlp, tinycnn, or pkg.mod:Class")
    model.add_argument("--model-kwargs", default="{}", help="JSON object for the model factory")
    model.add_argument("--input-shape", default=None, help="e.g. 32 or 1,16,16")
    model.add_argument("--num-classes", type=int, default=10)
    model.add_argument("--data", type=Path, default=None, help=".pt file; default synthetic")
    model.add_argument("--synthetic-samples", type=int, default=8192)
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--batch-size", type=int, default=64, help="per worker process")
    opt.add_argument("--epochs", type=int, default=1)
    opt.add_argument("--max-steps", type=int, default=None)
    opt.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    opt.add_argument("--lr", type=float, default=1e-3)
    opt.add_argument("--amp", choices=["auto", "off", "bf16", "fp16"], default="auto")
    opt.add_argument(
        "--backend",
        choices=["auto", "gloo", "nccl"],
        default=env_str(environ, contract.ENV_TORCH_BACKEND, "auto"),
    )
    opt.add_argument("--seed", type=int, default=0)
    ckpt = parser.add_argument_group("checkpoints (defaults from the operator's environment)")
    ckpt.add_argument(
        "--checkpoint-dir", type=Path, default=env_str(environ, contract.ENV_CHECKPOINT_DIR)
    )
    ckpt.add_argument(
        "--checkpoint-every-seconds",
        type=float,
        default=env_float(
            environ,
            contract.ENV_CHECKPOINT_EVERY_SECONDS,
            contract.DEFAULT_CHECKPOINT_EVERY_SECONDS,
        ),
    )
    ckpt.add_argument("--checkpoint-every-steps", type=int, default=0, help="0: time only")
    ckpt.add_argument("--keep-checkpoints", type=int, default=2)
    obs = parser.add_argument_group("observability")
    obs.add_argument(
        "--metrics-port", type=int, default=env_int(environ, contract.ENV_METRICS_PORT)
    )
    obs.add_argument("--log-every-steps", type=int, default=20)
    obs.add_argument("--summary-file", default=None)
    parser.add_argument("--timeout-seconds", type=float, default=600.0)
    return parser


def _input_shape(raw: str | None, model_name: str) -> tuple[int, ...]:
    if raw is None:
        if model_name in DEFAULT_INPUT_SHAPES:
            return DEFAULT_INPUT_SHAPES[model_name]
        raise ConfigError(f"--input-shape is required for model {model_name!r}")
    try:
        shape = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--input-shape {raw!r} is not a comma-separated list") from None
    if not shape or any(dim <= 0 for dim in shape):
        raise ConfigError(f"--input-shape {raw!r} must list positive sizes")
    return shape


def _model_kwargs(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--model-kwargs is not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise ConfigError("--model-kwargs must be a JSON object")
    return parsed


def parse_config(argv: Sequence[str], environ: Mapping[str, str]) -> TrainerConfig:
    """The trainer's configuration from ``environ`` (the pod) and ``argv`` (overrides)."""
    args = _parser(environ).parse_args(list(argv))
    if args.backend not in ("auto", "gloo", "nccl"):
        raise ConfigError(f"backend {args.backend!r} is not one of auto, gloo, nccl")
    positive = {
        "--batch-size": args.batch_size,
        "--epochs": args.epochs,
        "--synthetic-samples": args.synthetic_samples,
        "--log-every-steps": args.log_every_steps,
        "--keep-checkpoints": args.keep_checkpoints,
        "--num-classes": args.num_classes,
    }
    for flag, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{flag} must be positive, got {value}")
    if args.max_steps is not None and args.max_steps <= 0:
        raise ConfigError(f"--max-steps must be positive, got {args.max_steps}")
    if args.checkpoint_every_seconds <= 0:
        raise ConfigError("the checkpoint interval in seconds must be positive")
    model = ModelSpec(
        name=args.model,
        input_shape=_input_shape(args.input_shape, args.model),
        num_classes=args.num_classes,
        kwargs=_model_kwargs(args.model_kwargs),
    )
    return TrainerConfig(
        model=model,
        data_path=args.data,
        synthetic_samples=args.synthetic_samples,
        batch_size=args.batch_size,
        epochs=args.epochs,
        max_steps=args.max_steps,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        amp=args.amp,
        backend=args.backend,
        seed=args.seed,
        checkpoint_dir=Path(args.checkpoint_dir) if args.checkpoint_dir else None,
        checkpoint_every_seconds=args.checkpoint_every_seconds,
        checkpoint_every_steps=args.checkpoint_every_steps,
        keep_checkpoints=args.keep_checkpoints,
        metrics_port=args.metrics_port or None,
        log_every_steps=args.log_every_steps,
        summary_file=args.summary_file,
        timeout_seconds=args.timeout_seconds,
        job=env_str(environ, contract.ENV_JOB, "local") or "local",
        restart_count=env_int(environ, contract.ENV_RESTART_COUNT, 0) or 0,
        gpu_indices=env_int_list(environ, contract.ENV_GPU_INDICES),
    )
