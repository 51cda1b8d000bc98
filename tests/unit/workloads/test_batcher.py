"""Dynamic batching, driven deterministically by a model call that waits on a gate."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future

import pytest
import torch

from gpupool_workloads.server.batcher import DynamicBatcher, QueueFull, Unavailable
from gpupool_workloads.server.metrics import InferenceMetrics


class GatedModel:
    """Doubles its input; each call waits until the test opens the gate."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.called = threading.Semaphore(0)
        self.gate = threading.Semaphore(0)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(int(inputs.shape[0]))
        self.called.release()
        assert self.gate.acquire(timeout=10), "the test never opened the gate"
        return inputs * 2

    def wait_called(self) -> None:
        assert self.called.acquire(timeout=10), "the batcher never called the model"

    def open(self, calls: int) -> None:
        for _ in range(calls):
            self.gate.release()


@pytest.fixture
def model() -> GatedModel:
    return GatedModel()


@pytest.fixture
def batcher(model: GatedModel) -> Iterator[DynamicBatcher]:
    batcher = DynamicBatcher(
        model,
        max_batch_size=4,
        max_wait_seconds=0.05,
        max_queue_rows=10,
        metrics=InferenceMetrics.create(),
    )
    batcher.start()
    yield batcher
    model.open(100)
    batcher.stop(timeout=10)


def rows(*values: float) -> torch.Tensor:
    return torch.tensor([[value] for value in values])


def results(futures: list[Future[torch.Tensor]]) -> list[list[float]]:
    return [future.result(timeout=10).flatten().tolist() for future in futures]


def test_requests_waiting_behind_a_busy_model_share_full_batches(
    model: GatedModel, batcher: DynamicBatcher
) -> None:
    first = batcher.submit(rows(0))
    model.wait_called()  # the model is busy with [0] alone
    queued = [batcher.submit(rows(value)) for value in (1, 2, 3, 4, 5, 6)]
    model.open(3)
    assert results([first, *queued]) == [[0], [2], [4], [6], [8], [10], [12]]
    assert model.batch_sizes == [1, 4, 2]


def test_a_request_that_does_not_fit_starts_the_next_batch(
    model: GatedModel, batcher: DynamicBatcher
) -> None:
    first = batcher.submit(rows(0))
    model.wait_called()
    queued = [batcher.submit(rows(1, 1)), batcher.submit(rows(2, 2, 2)), batcher.submit(rows(3))]
    model.open(3)
    assert results(queued) == [[2, 2], [4, 4, 4], [6]]
    first.result(timeout=10)
    assert model.batch_sizes == [1, 2, 4]


def test_a_full_queue_refuses_and_stop_finishes_what_was_accepted(
    model: GatedModel, batcher: DynamicBatcher
) -> None:
    first = batcher.submit(rows(0))
    model.wait_called()
    accepted = [batcher.submit(rows(*range(5))), batcher.submit(rows(*range(5)))]
    with pytest.raises(QueueFull):
        batcher.submit(rows(9))  # 10 rows already wait
    stopping = threading.Thread(target=batcher.stop, kwargs={"timeout": 10})
    stopping.start()
    model.open(10)
    stopping.join(10)
    assert not stopping.is_alive()
    assert all(future.done() for future in [first, *accepted])
    assert results(accepted) == [[0, 2, 4, 6, 8]] * 2
    with pytest.raises(Unavailable):
        batcher.submit(rows(1))


def test_without_batching_every_request_is_its_own_model_call() -> None:
    calls: list[int] = []

    def model(inputs: torch.Tensor) -> torch.Tensor:
        calls.append(int(inputs.shape[0]))
        return inputs + 1

    batcher = DynamicBatcher(
        model, max_batch_size=1, max_wait_seconds=1.0, max_queue_rows=100,
        metrics=InferenceMetrics.create(),
    )  # fmt: skip
    batcher.start()
    try:
        futures = [batcher.submit(rows(value)) for value in range(5)]
        assert results(futures) == [[1], [2], [3], [4], [5]]
    finally:
        batcher.stop(timeout=10)
    assert calls == [1] * 5
