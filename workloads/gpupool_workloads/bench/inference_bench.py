"""Serving latency and throughput with dynamic batching on and off.

One server process per setting, loaded with the same trainer checkpoint; closed-loop
clients (threads in this process, one request of one row at a time each) for a fixed
time. Latency is measured by the clients, end to end over HTTP.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gpupool_workloads import checkpoint
from gpupool_workloads.bench.stats import percentile
from gpupool_workloads.models import ModelSpec, build_model

READY_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True, kw_only=True)
class InferenceBenchConfig:
    clients: int
    seconds: float
    model_kwargs: dict[str, Any]
    max_batch_size: int
    max_wait_ms: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_model(directory: Path, spec: ModelSpec) -> None:
    torch.manual_seed(0)
    model = build_model(spec)
    checkpoint.write_checkpoint(
        directory,
        0,
        {
            "format": checkpoint.FORMAT,
            "model": spec.to_dict(),
            "model_state": model.state_dict(),
            "progress": {"step": 0},
        },
    )


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not _ready(url):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not ready after {READY_TIMEOUT_SECONDS}s")
        time.sleep(0.1)


def _load(url: str, *, clients: int, seconds: float, width: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    body = json.dumps({"inputs": [[0.25] * width]}).encode()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        mine: list[float] = []
        failed = 0
        while time.monotonic() < stop_at:
            request = urllib.request.Request(
                f"{url}/v1/predict", data=body, headers={"Content-Type": "application/json"}
            )
            started = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                mine.append(time.monotonic() - started)
            except (urllib.error.URLError, OSError):
                failed += 1
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def _one_setting(
    model_dir: Path, config: InferenceBenchConfig, *, max_batch_size: int, width: int
) -> dict[str, Any]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "gpupool_workloads.server", "--model", str(model_dir),
        "--host", "127.0.0.1", "--port", str(port),
        "--max-batch-size", str(max_batch_size), "--max-wait-ms", str(config.max_wait_ms),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(url, process)
        _load(url, clients=config.clients, seconds=1.0, width=width)  # warm up
        latencies, errors = _load(url, clients=config.clients, seconds=config.seconds, width=width)
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
            exposition = response.read().decode()
    finally:
        process.terminate()
        process.wait(30)
    batch_count = batch_sum = 0.0
    for line in exposition.splitlines():
        if line.startswith("gpupool_inference_batch_size_count "):
            batch_count = float(line.split()[1])
        elif line.startswith("gpupool_inference_batch_size_sum "):
            batch_sum = float(line.split()[1])
    return {
        "max_batch_size": max_batch_size,
        "max_wait_ms": config.max_wait_ms if max_batch_size > 1 else 0.0,
        "requests": len(latencies),
        "errors": errors,
        "throughput_rps": len(latencies) / config.seconds,
        "p50_ms": percentile(latencies, 0.50) * 1000 if latencies else None,
        "p99_ms": percentile(latencies, 0.99) * 1000 if latencies else None,
        "mean_batch_size": batch_sum / batch_count if batch_count else None,
    }


def run_inference_bench(config: InferenceBenchConfig) -> dict[str, Any]:
    spec = ModelSpec(name="mlp", input_shape=(256,), num_classes=10, kwargs=config.model_kwargs)
    with tempfile.TemporaryDirectory(prefix="gpupool-bench-") as scratch:
        model_dir = Path(scratch)
        _write_model(model_dir, spec)
        width = spec.input_shape[0]
        on = _one_setting(model_dir, config, max_batch_size=config.max_batch_size, width=width)
        off = _one_setting(model_dir, config, max_batch_size=1, width=width)
    return {
        "clients": config.clients,
        "seconds": config.seconds,
        "model": spec.to_dict(),
        "batching_on": on,
        "batching_off": off,
    }
