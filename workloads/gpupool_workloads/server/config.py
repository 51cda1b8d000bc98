"""Server configuration: the operator's environment first, command-line flags override."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpupool_workloads import contract
from gpupool_workloads.envparse import env_int, env_str
from gpupool_workloads.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    model_uri: str
    model_mount_root: str
    host: str
    port: int
    metrics_port: int | None
    """A second listener for ``/metrics`` alone (the operator's scrape port); ``/metrics`` is
    on ``port`` too."""
    max_batch_size: int
    """Rows per model call; 1 turns dynamic batching off."""
    max_wait_ms: float
    """How long the first request of a batch may wait for company."""
    max_queue_rows: int
    """Rows waiting for the model beyond which requests get 503 (backpressure)."""
    request_timeout_seconds: float
    model_wait_seconds: float
    """How long to wait for the model file to appear before giving up."""
    drain_seconds: float
    """After SIGTERM: keep serving this long with ``/readyz`` failing, then stop accepting."""
    device: str
    input_shape: tuple[int, ...] | None
    """Per-sample input shape for TorchScript models (checkpoints carry their own)."""
    torch_threads: int
    """torch intra-op threads. 1 by default: on CPU, more threads spin against the HTTP
    threads and the batcher (and a container sees the host's cores, not its limit)."""


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gpupool_workloads.server",
        description="gpupool inference server: dynamic batching, /readyz, /metrics, drain.",
    )
    parser.add_argument("--model", default=env_str(environ, contract.ENV_MODEL_URI))
    parser.add_argument(
        "--model-mount-root",
        default=env_str(environ, contract.ENV_MODEL_MOUNT_ROOT, contract.DEFAULT_MODEL_MOUNT_ROOT),
    )
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument(
        "--port",
        type=int,
        default=env_int(environ, contract.ENV_SERVING_PORT, contract.DEFAULT_SERVING_PORT),
    )
    parser.add_argument(
        "--metrics-port", type=int, default=env_int(environ, contract.ENV_METRICS_PORT)
    )
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-queue-rows", type=int, default=4096)
    parser.add_argument("--request-timeout-seconds", type=float, default=30.0)
    parser.add_argument("--model-wait-seconds", type=float, default=600.0)
    parser.add_argument("--drain-seconds", type=float, default=0.0)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--input-shape", default=None, help="TorchScript only, e.g. 1,16,16")
    parser.add_argument("--torch-threads", type=int, default=1, help="0: torch's default")
    return parser


def parse_config(argv: Sequence[str], environ: Mapping[str, str]) -> ServerConfig:
    args = _parser(environ).parse_args(list(argv))
    if not args.model:
        raise ConfigError(f"no model: pass --model or set {contract.ENV_MODEL_URI}")
    if args.max_batch_size <= 0 or args.max_queue_rows <= 0:
        raise ConfigError("--max-batch-size and --max-queue-rows must be positive")
    if args.max_wait_ms < 0 or args.drain_seconds < 0:
        raise ConfigError("--max-wait-ms and --drain-seconds must not be negative")
    input_shape = None
    if args.input_shape:
        try:
            input_shape = tuple(int(part) for part in args.input_shape.split(","))
        except ValueError:
            raise ConfigError(f"--input-shape {args.input_shape!r} is not a list") from None
    metrics_port = args.metrics_port if args.metrics_port != args.port else None
    return ServerConfig(
        model_uri=args.model,
        model_mount_root=args.model_mount_root,
        host=args.host,
        port=args.port,
        metrics_port=metrics_port or None,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_queue_rows=args.max_queue_rows,
        request_timeout_seconds=args.request_timeout_seconds,
        model_wait_seconds=args.model_wait_seconds,
        drain_seconds=args.drain_seconds,
        device=args.device,
        input_shape=input_shape,
        torch_threads=args.torch_threads,
    )
