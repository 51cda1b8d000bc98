"""Dynamic batching: requests from many HTTP threads, one model call per batch.

One thread owns the model. It takes the oldest waiting request, then keeps adding
requests until the batch holds ``max_batch_size`` rows or the oldest request has
waited ``max_wait_seconds``, runs the model once on the concatenation, and hands
each request its slice of the output. A request larger than ``max_batch_size`` runs
alone. ``max_batch_size=1`` is batching off: one request per model call, in order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from gpupool_workloads.server.metrics import InferenceMetrics

log = logging.getLogger("gpupool.server")


class Unavailable(RuntimeError):
    """The batcher takes no request now (answer 503: retry, perhaps on another replica)."""


class QueueFull(Unavailable):
    """More rows are waiting than the server accepts."""


@dataclass
class _Request:
    inputs: torch.Tensor
    enqueued_at: float
    future: Future[torch.Tensor] = field(default_factory=Future)

    @property
    def rows(self) -> int:
        return int(self.inputs.shape[0])


class DynamicBatcher:
    def __init__(
        self,
        predict: Callable[[torch.Tensor], torch.Tensor],
        *,
        max_batch_size: int,
        max_wait_seconds: float,
        max_queue_rows: int,
        metrics: InferenceMetrics,
        clock: Callable[[], float] = time.monotonic,
        thread_setup: Callable[[], None] | None = None,
    ) -> None:
        self._predict = predict
        self._thread_setup = thread_setup
        self._max_batch_size = max_batch_size
        self._max_wait_seconds = max_wait_seconds
        self._max_queue_rows = max_queue_rows
        self._metrics = metrics
        self._clock = clock
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._queued_rows = 0
        self._rows_lock = threading.Lock()
        self._held: _Request | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, inputs: torch.Tensor) -> Future[torch.Tensor]:
        request = _Request(inputs=inputs, enqueued_at=self._clock())
        with self._rows_lock:
            if self._closed:
                raise Unavailable("the server is shutting down")
            if self._queued_rows + request.rows > self._max_queue_rows:
                raise QueueFull(f"{self._queued_rows} rows already waiting")
            self._queued_rows += request.rows
            self._metrics.queued_rows.set(self._queued_rows)
        self._queue.put(request)
        return request.future

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new requests, finish everything already submitted, end the thread."""
        with self._rows_lock:
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _collect(self, first: _Request) -> tuple[list[_Request], bool]:
        """A batch starting with ``first``; the flag says the stop marker was taken."""
        batch, rows = [first], first.rows
        deadline = first.enqueued_at + self._max_wait_seconds
        while rows < self._max_batch_size:
            try:
                # Past the deadline the timeout is 0: take what is already queued, no waiting.
                request = self._queue.get(timeout=max(deadline - self._clock(), 0.0))
            except queue.Empty:
                break
            if request is None:
                return batch, True
            if rows + request.rows > self._max_batch_size:
                self._held = request  # it starts the next batch
                break
            batch.append(request)
            rows += request.rows
        return batch, False

    def _run(self) -> None:
        if self._thread_setup is not None:
            self._thread_setup()
        stopped = False
        while not stopped or self._held is not None:
            first, self._held = self._held, None
            if first is None:
                first = self._queue.get()
            if first is None:
                stopped = True
                continue
            if stopped:  # only the held request is left
                self._execute([first])
                continue
            batch, stopped = self._collect(first)
            self._execute(batch)

    def _execute(self, batch: list[_Request]) -> None:
        rows = sum(request.rows for request in batch)
        with self._rows_lock:
            self._queued_rows -= rows
            self._metrics.queued_rows.set(self._queued_rows)
        started = self._clock()
        try:
            inputs = torch.cat([request.inputs for request in batch])
            outputs = self._predict(inputs).detach().cpu()
        except Exception as error:
            log.exception("model call on a batch of %d rows failed", rows)
            for request in batch:
                request.future.set_exception(error)
            return
        self._metrics.batch_seconds.observe(self._clock() - started)
        self._metrics.batch_size.observe(rows)
        offset = 0
        for request in batch:
            request.future.set_result(outputs[offset : offset + request.rows])
            offset += request.rows
