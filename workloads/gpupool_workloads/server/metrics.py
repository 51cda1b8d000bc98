"""Prometheus metrics of the inference server: the signals autoscaling needs."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass(frozen=True)
class InferenceMetrics:
    registry: CollectorRegistry
    request_seconds: Histogram
    requests: Counter
    in_flight: Gauge
    batch_size: Histogram
    batch_seconds: Histogram
    queued_rows: Gauge
    ready: Gauge

    @classmethod
    def create(cls) -> InferenceMetrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            request_seconds=Histogram(
                "gpupool_inference_request_duration_seconds",
                "Time from reading a /v1/predict request to having its answer.",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            requests=Counter(
                "gpupool_inference_requests_total",
                "Prediction requests answered, by HTTP status code.",
                ["code"],
                registry=registry,
            ),
            in_flight=Gauge(
                "gpupool_inference_requests_in_flight",
                "Prediction requests being handled now (the concurrency autoscaling metric).",
                registry=registry,
            ),
            batch_size=Histogram(
                "gpupool_inference_batch_size",
                "Rows per model call formed by the dynamic batcher.",
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            batch_seconds=Histogram(
                "gpupool_inference_batch_duration_seconds",
                "Model time per batch.",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            queued_rows=Gauge(
                "gpupool_inference_queued_rows",
                "Input rows waiting for the model.",
                registry=registry,
            ),
            ready=Gauge(
                "gpupool_inference_ready",
                "1 when the model is loaded and the server is not draining.",
                registry=registry,
            ),
        )
