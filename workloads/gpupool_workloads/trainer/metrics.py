"""Prometheus metrics of one trainer process (served by local rank 0 of each pod)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

log = logging.getLogger("gpupool.trainer")

CHECKPOINT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass(frozen=True)
class TrainerMetrics:
    registry: CollectorRegistry
    steps: Counter
    step: Gauge
    samples_per_second: Gauge
    loss: Gauge
    checkpoint_seconds: Histogram
    last_checkpoint_timestamp: Gauge
    last_checkpoint_step: Gauge
    info: Info

    @classmethod
    def create(cls) -> TrainerMetrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            steps=Counter(
                "gpupool_trainer_steps_total",
                "Optimizer steps taken by this process since it started.",
                registry=registry,
            ),
            step=Gauge(
                "gpupool_trainer_step",
                "Global optimizer step of the job (continues across restarts).",
                registry=registry,
            ),
            samples_per_second=Gauge(
                "gpupool_trainer_samples_per_second",
                "Global training throughput over the last logging window.",
                registry=registry,
            ),
            loss=Gauge(
                "gpupool_trainer_loss",
                "Training loss averaged over ranks at the last logging step.",
                registry=registry,
            ),
            checkpoint_seconds=Histogram(
                "gpupool_trainer_checkpoint_seconds",
                "Time the training loop was blocked for one checkpoint.",
                buckets=CHECKPOINT_BUCKETS,
                registry=registry,
            ),
            last_checkpoint_timestamp=Gauge(
                "gpupool_trainer_last_checkpoint_timestamp_seconds",
                "Unix time of the last durable checkpoint.",
                registry=registry,
            ),
            last_checkpoint_step=Gauge(
                "gpupool_trainer_last_checkpoint_step",
                "Global step of the last durable checkpoint.",
                registry=registry,
            ),
            info=Info("gpupool_trainer", "Static facts about this worker.", registry=registry),
        )

    def serve(self, port: int) -> bool:
        """Serve ``/metrics`` on ``port``; a busy port is logged, never fatal to training."""
        try:
            start_http_server(port, registry=self.registry)
        except OSError as error:
            log.warning("metrics endpoint on port %d not started: %s", port, error)
            return False
        return True
