"""Server state (loading, ready, draining) and the prediction path, free of HTTP."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gpupool_workloads.server.batcher import DynamicBatcher, Unavailable
from gpupool_workloads.server.loader import LoadedModel
from gpupool_workloads.server.metrics import InferenceMetrics


class BadRequest(ValueError):
    """The request cannot be answered as sent (HTTP 400)."""


class NotReady(Unavailable):
    """No model yet, or draining (HTTP 503)."""


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


class InferenceApp:
    def __init__(
        self,
        metrics: InferenceMetrics,
        *,
        max_batch_size: int,
        max_wait_seconds: float,
        max_queue_rows: int,
        request_timeout_seconds: float,
        torch_threads: int = 0,
    ) -> None:
        self.metrics = metrics
        self._torch_threads = torch_threads
        self._max_batch_size = max_batch_size
        self._max_wait_seconds = max_wait_seconds
        self._max_queue_rows = max_queue_rows
        self._request_timeout_seconds = request_timeout_seconds
        self._lock = threading.Lock()
        self._model: LoadedModel | None = None
        self._batcher: DynamicBatcher | None = None
        self._draining = False
        self._load_error: str | None = None

    # --- lifecycle ----------------------------------------------------------------

    def set_model(self, model: LoadedModel) -> None:
        """Warm the model up, start the batcher, and only then report ready."""
        if model.input_shape is not None:
            with torch.inference_mode():
                model.module(torch.zeros((1, *model.input_shape), device=model.device))

        def predict(inputs: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                output: torch.Tensor = model.module(inputs.to(model.device))
            return output

        batcher = DynamicBatcher(
            predict,
            max_batch_size=self._max_batch_size,
            max_wait_seconds=self._max_wait_seconds,
            max_queue_rows=self._max_queue_rows,
            metrics=self.metrics,
            thread_setup=self._limit_torch_threads,
        )
        batcher.start()
        with self._lock:
            self._model, self._batcher = model, batcher
            self.metrics.ready.set(0 if self._draining else 1)

    def _limit_torch_threads(self) -> None:
        # OpenMP thread counts are per calling thread: set it where the model runs.
        if self._torch_threads > 0:
            torch.set_num_threads(self._torch_threads)

    def set_load_error(self, message: str) -> None:
        with self._lock:
            self._load_error = message

    def start_draining(self) -> None:
        with self._lock:
            self._draining = True
            self.metrics.ready.set(0)

    def stop_batcher(self) -> None:
        with self._lock:
            batcher = self._batcher
        if batcher is not None:
            batcher.stop()

    def readiness(self) -> Readiness:
        with self._lock:
            if self._draining:
                return Readiness(False, "draining")
            if self._load_error is not None:
                return Readiness(False, f"model failed to load: {self._load_error}")
            if self._model is None:
                return Readiness(False, "loading model")
            return Readiness(True, "ready")

    def model_info(self) -> dict[str, Any]:
        with self._lock:
            model = self._model
        if model is None:
            raise NotReady("loading model")
        return {
            "name": model.name,
            "kind": model.kind,
            "source": str(model.source),
            "step": model.step,
            "input_shape": list(model.input_shape) if model.input_shape else None,
            "device": str(model.device),
            "max_batch_size": self._max_batch_size,
            "max_wait_ms": self._max_wait_seconds * 1000,
        }

    # --- predictions ----------------------------------------------------------------

    def _inputs(self, body: Any, input_shape: Sequence[int] | None) -> torch.Tensor:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise BadRequest('expected a JSON object {"inputs": [[...], ...]}')
        rows = body["inputs"]
        if not rows:
            raise BadRequest("inputs is empty")
        try:
            inputs = torch.tensor(rows, dtype=torch.float32)
        except (TypeError, ValueError) as error:
            raise BadRequest(f"inputs is not a rectangular array of numbers: {error}") from None
        if input_shape is not None and tuple(inputs.shape[1:]) != tuple(input_shape):
            if inputs.dim() == 2 and inputs.shape[1] == math.prod(input_shape):
                return inputs.view(inputs.shape[0], *input_shape)  # flattened rows
            raise BadRequest(
                f"each input must have shape {list(input_shape)}, got {list(inputs.shape[1:])}"
            )
        return inputs

    def predict(self, body: Any) -> list[Any]:
        """Outputs for the request's rows, computed in a shared batch."""
        with self._lock:  # draining still serves: the listener closes after the drain delay
            model, batcher = self._model, self._batcher
        if model is None or batcher is None:
            raise NotReady("loading model")
        inputs = self._inputs(body, model.input_shape)
        future = batcher.submit(inputs)
        outputs = future.result(timeout=self._request_timeout_seconds)
        result: list[Any] = outputs.tolist()
        return result
