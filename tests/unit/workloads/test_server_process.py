"""The inference server as a real process: readiness, concurrent batched answers, metrics, drain."""

from __future__ import annotations

import json
import random
import re
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from gpupool_workloads import checkpoint, contract
from gpupool_workloads.models import ModelSpec, build_model
from gpupool_workloads.preemption import PreemptionFlag
from gpupool_workloads.trainer.config import parse_config
from gpupool_workloads.trainer.distributed import Collectives, ProcessPlace
from gpupool_workloads.trainer.loop import Trainer
from gpupool_workloads.trainer.metrics import TrainerMetrics

from .support import WorkerProcess, free_port, http_get, http_post_json, metric_value, wait_for

CLIENTS = 12


def train_a_checkpoint(directory: Path) -> None:
    """A few real trainer steps in this process: the server loads what the trainer writes."""
    config = parse_config(
        ["--max-steps", "3", "--synthetic-samples", "256", "--batch-size", "16",
         "--checkpoint-dir", str(directory)],
        {},
    )  # fmt: skip
    place = ProcessPlace(rank=0, local_rank=0, world_size=1, node_rank=0)
    Trainer(config, Collectives(place, "gloo", 60), TrainerMetrics.create(), PreemptionFlag()).run()


def reference_model(directory: Path) -> torch.nn.Module:
    latest = checkpoint.latest_checkpoint(directory)
    assert latest is not None
    payload = checkpoint.read_checkpoint(latest)
    model = build_model(ModelSpec.from_dict(payload["model"]))
    model.load_state_dict(payload["model_state"])
    return model.eval()


def labelled_sample(exposition: str, name: str, labels: str) -> float | None:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", exposition, re.M)
    return float(match.group(1)) if match else None


def in_flight_at_least(server: Server, count: int) -> Callable[[], float | None]:
    def probe() -> float | None:
        in_flight = metric_value(server.metrics(), "gpupool_inference_requests_in_flight")
        return in_flight if in_flight is not None and in_flight >= count else None

    return probe


class Server:
    def __init__(self, tmp_path: Path, *, model_dir: Path, extra: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "gpupool_workloads.server",
            "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(self.port), *extra,
        ]  # fmt: skip
        self.process = WorkerProcess(command, {}, tmp_path / f"server-{self.port}.log")

    def metrics(self) -> str:
        status, body = http_get(f"{self.url}/metrics")
        assert status == 200, body
        return body


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(
        tmp_path,
        model_dir=tmp_path / "models",
        extra=["--max-batch-size", "16", "--max-wait-ms", "20", "--drain-seconds", "1"],
    )
    try:
        yield server
    finally:
        server.process.kill()


def test_ready_only_after_loading_then_batched_correct_answers_and_a_drain(
    tmp_path: Path, server: Server
) -> None:
    wait_for(
        lambda: http_get(f"{server.url}/healthz")[0] == 200,
        timeout=60,
        what=f"/healthz; server log:\n{server.process.log_path}",
    )
    assert http_get(f"{server.url}/readyz")[0] == 503  # no model file yet
    status, body = http_post_json(f"{server.url}/v1/predict", {"inputs": [[0.0] * 32]})
    assert (status, body["error"]) == (503, "loading model")
    assert metric_value(server.metrics(), "gpupool_inference_ready") == 0

    train_a_checkpoint(tmp_path / "models")
    wait_for(lambda: http_get(f"{server.url}/readyz")[0] == 200, timeout=30, what="/readyz 200")
    model = reference_model(tmp_path / "models")

    # Concurrent clients until the metrics have shown several requests in flight at once.
    answered: list[tuple[list[list[float]], list[list[float]]]] = []
    failures: list[str] = []
    stop_load = threading.Event()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while not stop_load.is_set():
            inputs = [[rng.uniform(-2, 2) for _ in range(32)] for _ in range(rng.randint(1, 3))]
            status, body = http_post_json(f"{server.url}/v1/predict", {"inputs": inputs})
            if status != 200:
                failures.append(f"{status}: {body}")
                return
            answered.append((inputs, body["outputs"]))

    clients = [threading.Thread(target=client, args=(seed,)) for seed in range(CLIENTS)]
    for thread in clients:
        thread.start()
    try:
        wait_for(
            in_flight_at_least(server, 2), timeout=30, what="2+ in flight on /metrics", every=0.02
        )
        wait_for(lambda: len(answered) >= 100, timeout=60, what="100 answers")
    finally:
        stop_load.set()
        for thread in clients:
            thread.join(30)
    assert not failures, failures

    for inputs, outputs in answered:
        expected = model(torch.tensor(inputs))
        assert torch.allclose(torch.tensor(outputs), expected, atol=1e-5)

    exposition = server.metrics()
    rows = sum(len(inputs) for inputs, _ in answered)
    batches = metric_value(exposition, "gpupool_inference_batch_size_count")
    assert metric_value(exposition, "gpupool_inference_batch_size_sum") == rows
    assert batches is not None and batches < len(answered), "no batch held two requests"
    assert labelled_sample(exposition, "gpupool_inference_requests_total", 'code="200"') == len(
        answered
    )
    assert metric_value(exposition, "gpupool_inference_request_duration_seconds_count") == (
        len(answered) + 1  # and the 503 while loading
    )
    assert metric_value(exposition, "gpupool_inference_requests_in_flight") == 0
    assert metric_value(exposition, "gpupool_inference_ready") == 1

    # Drain: a request still being received when SIGTERM comes is answered; then exit 0.
    body = json.dumps({"inputs": [[0.5] * 32]}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as slow:
        slow.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        wait_for(in_flight_at_least(server, 1), timeout=10, what="the slow request in flight")
        server.process.send(signal.SIGTERM)
        wait_for(
            lambda: http_get(f"{server.url}/readyz")[0] == 503,
            timeout=10,
            what="/readyz 503 while draining",
        )
        slow.sendall(body[10:])
        response = slow.makefile("rb").read().decode()
    assert response.startswith("HTTP/1.0 200"), response
    answer = json.loads(response.split("\r\n\r\n", 1)[1])
    expected = model(torch.tensor([[0.5] * 32]))
    assert torch.allclose(torch.tensor(answer["outputs"]), expected, atol=1e-5)
    assert server.process.wait(timeout=30) == contract.EXIT_SUCCEEDED
    assert http_get(f"{server.url}/healthz")[0] == 0  # nothing listens any more
