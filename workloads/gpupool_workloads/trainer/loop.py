"""The training loop: DDP steps, checkpoints on time/step/SIGTERM, resume, progress."""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gpupool_workloads import checkpoint
from gpupool_workloads.errors import CheckpointError, ConfigError
from gpupool_workloads.models import ModelSpec, build_model
from gpupool_workloads.preemption import PreemptionFlag
from gpupool_workloads.trainer.config import TrainerConfig
from gpupool_workloads.trainer.control import ControlSchedule
from gpupool_workloads.trainer.data import TensorDataset, load_dataset
from gpupool_workloads.trainer.distributed import Collectives
from gpupool_workloads.trainer.metrics import TrainerMetrics
from gpupool_workloads.trainer.sampler import GlobalBatchSampler
from gpupool_workloads.trainer.state import (
    Progress,
    capture_rng,
    parameter_digest,
    restore_rng,
    seed_rng,
)

log = logging.getLogger("gpupool.trainer")

WARMUP_STEPS = 5
"""Steps left out of the run's steady-state throughput (allocation, first collectives)."""


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    PREEMPTED = "preempted"


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """What one process did; written as the JSON summary and returned to callers."""

    outcome: Outcome
    rank: int
    world_size: int
    start_step: int
    step: int
    epoch: int
    samples_total: int
    first_loss: float | None
    """Rank-mean loss at this process's first logging step."""
    last_loss: float | None
    samples_per_second: float | None
    """Global samples/s from the warm-up's end to the last step, checkpoints included."""
    checkpoint_seconds: list[float]
    last_checkpoint: str | None
    parameter_digest: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "rank": self.rank,
            "world_size": self.world_size,
            "start_step": self.start_step,
            "step": self.step,
            "epoch": self.epoch,
            "samples_total": self.samples_total,
            "first_loss": self.first_loss,
            "last_loss": self.last_loss,
            "samples_per_second": self.samples_per_second,
            "checkpoint_seconds": self.checkpoint_seconds,
            "last_checkpoint": self.last_checkpoint,
            "parameter_digest": self.parameter_digest,
        }


def _amp_dtype(config: TrainerConfig, device: torch.device) -> torch.dtype | None:
    if config.amp == "off":
        return None
    if config.amp == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else None
    if config.amp == "fp16" and device.type != "cuda":
        raise ConfigError("--amp fp16 needs a CUDA device; use bf16 or off on CPU")
    return torch.float16 if config.amp == "fp16" else torch.bfloat16


def _optimizer(config: TrainerConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.9)
    return torch.optim.AdamW(model.parameters(), lr=config.learning_rate)


class Trainer:
    """One process's share of a data-parallel run. Build, then :meth:`run` once."""

    def __init__(
        self,
        config: TrainerConfig,
        collectives: Collectives,
        metrics: TrainerMetrics,
        preemption: PreemptionFlag,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.collectives = collectives
        self.metrics = metrics
        self.preemption = preemption
        self.clock = clock
        self.wall_clock = wall_clock
        self.place = collectives.place
        self.device = collectives.device
        self.is_writer = self.place.rank == 0 and config.checkpoint_dir is not None

        seed_rng(config.seed + self.place.rank)
        self.dataset: TensorDataset = load_dataset(
            config.model,
            data_path=config.data_path,
            synthetic_samples=config.synthetic_samples,
            seed=config.seed,
        )
        self.sampler = GlobalBatchSampler(
            num_samples=len(self.dataset),
            batch_size=config.batch_size,
            world_size=self.place.world_size,
            rank=self.place.rank,
            seed=config.seed,
        )
        if self.sampler.steps_per_epoch() == 0:
            raise ConfigError(
                f"{len(self.dataset)} samples do not fill one global batch of "
                f"{self.sampler.global_batch}"
            )
        self.model: nn.Module = build_model(config.model).to(self.device)
        self.optimizer = _optimizer(config, self.model)
        self.amp_dtype = _amp_dtype(config, self.device)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.amp_dtype == torch.float16 and self.device.type == "cuda"
        )
        self.loss_fn = nn.CrossEntropyLoss()
        self.progress = Progress()
        self.resumed_from: str | None = None
        self.last_durable: tuple[int, float] | None = None
        """(step, wall-clock time) of the newest durable checkpoint: the exit report."""
        self._resume()
        self.trained: nn.Module = self.model
        if collectives.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.trained = DistributedDataParallel(self.model, device_ids=device_ids)
        self.checkpoint_seconds: list[float] = []
        self.first_loss: float | None = None
        self.last_checkpoint: str | None = self.resumed_from
        self.last_saved_step = self.progress.step if self.resumed_from else -1

    # --- resume -----------------------------------------------------------------

    def _resume(self) -> None:
        directory = self.config.checkpoint_dir
        latest = checkpoint.latest_checkpoint(directory) if directory else None
        if latest is None:
            return
        payload = checkpoint.read_checkpoint(latest)
        saved_spec = ModelSpec.from_dict(payload["model"])
        if saved_spec != self.config.model:
            raise ConfigError(
                f"{latest} holds model {saved_spec}, but this run trains {self.config.model}"
            )
        self.model.load_state_dict(payload["model_state"])
        self.optimizer.load_state_dict(payload["optimizer_state"])
        if payload.get("scaler_state") and self.scaler.is_enabled():
            self.scaler.load_state_dict(payload["scaler_state"])
        self.progress = Progress.from_dict(payload["progress"])
        saved_at = payload.get("saved_at_unix")
        if isinstance(saved_at, int | float):
            self.last_durable = (self.progress.step, float(saved_at))
        rng_states: list[Any] = payload["rng"]
        if self.place.rank < len(rng_states):
            restore_rng(rng_states[self.place.rank], self.device)
        else:
            seed_rng(self.config.seed + self.place.rank + self.progress.step)
        self.resumed_from = str(latest)
        log.info(
            "resumed from %s: step=%d epoch=%d samples_in_epoch=%d (saved by world_size=%d, "
            "now %d)",
            latest,
            self.progress.step,
            self.progress.epoch,
            self.progress.samples_in_epoch,
            payload["world_size"],
            self.place.world_size,
        )

    # --- checkpoints ---------------------------------------------------------------

    def _payload(self, reason: str, rng_states: list[object]) -> dict[str, Any]:
        return {
            "format": checkpoint.FORMAT,
            "model": self.config.model.to_dict(),
            "model_state": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer_state": self.optimizer.state_dict(),
            "scaler_state": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "progress": self.progress.to_dict(),
            "world_size": self.place.world_size,
            "rng": rng_states,
            "reason": reason,
            "saved_at_unix": self.wall_clock(),
            "job": self.config.job,
            "restart_count": self.config.restart_count,
        }

    def save(self, reason: str) -> None:
        """Collective: every rank calls it; rank 0 writes; all return once it is durable."""
        if self.config.checkpoint_dir is None:
            return
        started, step = self.clock(), self.progress.step
        rng_states = self.collectives.gather_to_all(capture_rng(self.device))
        written_ok = True
        if self.is_writer:
            try:
                path = checkpoint.write_checkpoint(
                    self.config.checkpoint_dir,
                    self.progress.step,
                    self._payload(reason, rng_states),
                )
                checkpoint.prune_checkpoints(
                    self.config.checkpoint_dir, self.config.keep_checkpoints
                )
                self.last_checkpoint = str(path)
            except CheckpointError:
                log.exception("checkpoint at step %d failed", self.progress.step)
                written_ok = False
        if not self.collectives.all_true(written_ok):
            raise CheckpointError(f"rank 0 could not write the checkpoint of step {step}")
        elapsed = self.clock() - started
        self.last_saved_step = self.progress.step
        self.last_durable = (self.progress.step, self.wall_clock())
        self.checkpoint_seconds.append(elapsed)
        self.metrics.checkpoint_seconds.observe(elapsed)
        self.metrics.last_checkpoint_timestamp.set(self.wall_clock())
        self.metrics.last_checkpoint_step.set(self.progress.step)
        if self.place.rank == 0:
            log.info(
                "checkpoint step=%d reason=%s seconds=%.3f path=%s",
                self.progress.step,
                reason,
                elapsed,
                self.last_checkpoint,
            )

    # --- steps ----------------------------------------------------------------------

    def _batches(self) -> Iterator[torch.Tensor]:
        """This rank's batches from the resumed position to the end of the run."""
        while self.progress.epoch < self.config.epochs:
            progress = self.progress
            yield from self.sampler.rank_batches(progress.epoch, progress.samples_in_epoch)
            self.progress.epoch += 1
            self.progress.samples_in_epoch = 0

    def _step(self, indices: torch.Tensor) -> torch.Tensor:
        inputs = self.dataset.inputs[indices].to(self.device, non_blocking=True)
        targets = self.dataset.targets[indices].to(self.device, non_blocking=True)
        autocast = (
            torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        self.optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss: torch.Tensor = self.loss_fn(self.trained(inputs), targets)
        self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    def _step_checkpoint_due(self, start_step: int) -> bool:
        """Step-based checkpoints: every rank knows the step, so no agreement is needed."""
        every, step = self.config.checkpoint_every_steps, self.progress.step
        return (
            every > 0 and step > start_step and step % every == 0 and self.last_saved_step != step
        )

    def _finished(self) -> bool:
        max_steps = self.config.max_steps
        return max_steps is not None and self.progress.step >= max_steps

    def run(self) -> RunReport:
        start_step = self.progress.step
        if self.progress.completed:
            log.info("checkpoint says the run completed at step %d: nothing to do", start_step)
            return self._report(Outcome.SUCCEEDED, start_step, None, None)
        self.metrics.step.set(self.progress.step)
        global_batch = self.sampler.global_batch
        control = ControlSchedule(
            self.collectives,
            checkpoint_every_seconds=self.config.checkpoint_every_seconds,
            clock=self.clock,
            first_step=start_step,
        )
        window_start, window_steps = self.clock(), 0
        warm_at: float | None = None
        warm_step = 0
        last_loss: float | None = None
        batches = self._batches()
        self.trained.train()
        while True:
            decision = control.at_boundary(
                self.progress.step, preempt_requested=self.preemption.requested
            )
            if decision.preempt:
                if self.progress.step != self.last_saved_step:
                    self.save("preempted")
                log.warning(
                    "preempted (%s) at step %d: %s, exiting",
                    self.preemption.signal_name or "a peer rank was signalled",
                    self.progress.step,
                    "checkpoint durable" if self.config.checkpoint_dir else "no checkpoint dir",
                )
                return self._report(Outcome.PREEMPTED, start_step, last_loss, (warm_at, warm_step))
            if decision.checkpoint_due or self._step_checkpoint_due(start_step):
                self.save("periodic")
                control.checkpoint_taken()
            indices = None if self._finished() else next(batches, None)
            if indices is None:
                break
            loss = self._step(indices)
            self.progress.step += 1
            self.progress.samples_in_epoch += global_batch
            self.progress.samples_total += global_batch
            self.metrics.steps.inc()
            self.metrics.step.set(self.progress.step)
            window_steps += 1
            if self.progress.step - start_step == WARMUP_STEPS:
                warm_at, warm_step = self.clock(), self.progress.step
            if self.progress.step % self.config.log_every_steps == 0:
                last_loss = self.collectives.mean(float(loss.item()))
                self.first_loss = last_loss if self.first_loss is None else self.first_loss
                now = self.clock()
                rate = window_steps * global_batch / max(now - window_start, 1e-9)
                window_start, window_steps = now, 0
                self.metrics.loss.set(last_loss)
                self.metrics.samples_per_second.set(rate)
                if self.place.rank == 0:
                    log.info(
                        "step=%d epoch=%d loss=%.4f samples/s=%.1f world_size=%d",
                        self.progress.step,
                        self.progress.epoch,
                        last_loss,
                        rate,
                        self.place.world_size,
                    )
        self.progress.completed = True
        self.save("final")
        if self.place.rank == 0:
            log.info("done at step=%d epoch=%d", self.progress.step, self.progress.epoch)
        return self._report(Outcome.SUCCEEDED, start_step, last_loss, (warm_at, warm_step))

    def _report(
        self,
        outcome: Outcome,
        start_step: int,
        last_loss: float | None,
        warm: tuple[float | None, int] | None,
    ) -> RunReport:
        samples_per_second = None
        if warm is not None and warm[0] is not None and self.progress.step > warm[1]:
            elapsed = self.clock() - warm[0]
            samples_per_second = (
                (self.progress.step - warm[1]) * self.sampler.global_batch / max(elapsed, 1e-9)
            )
        return RunReport(
            outcome=outcome,
            rank=self.place.rank,
            world_size=self.place.world_size,
            start_step=start_step,
            step=self.progress.step,
            epoch=self.progress.epoch,
            samples_total=self.progress.samples_total,
            first_loss=self.first_loss,
            last_loss=last_loss,
            samples_per_second=samples_per_second,
            checkpoint_seconds=self.checkpoint_seconds,
            last_checkpoint=self.last_checkpoint,
            parameter_digest=parameter_digest(self.model),
        )
