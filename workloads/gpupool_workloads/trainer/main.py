"""Entry point of one trainer process: config, process group, run, exit code."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from gpupool_workloads import contract
from gpupool_workloads.errors import ConfigError
from gpupool_workloads.logs import configure_logging
from gpupool_workloads.preemption import PreemptionFlag
from gpupool_workloads.termination import termination_message, write_termination_message
from gpupool_workloads.trainer.config import parse_config
from gpupool_workloads.trainer.distributed import Collectives, ProcessPlace, resolve_backend
from gpupool_workloads.trainer.loop import Outcome, RunReport, Trainer
from gpupool_workloads.trainer.metrics import TrainerMetrics

log = logging.getLogger("gpupool.trainer")


def _write_summary(template: str, report: RunReport) -> None:
    path = Path(template.replace("{rank}", str(report.rank)))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # ranks may share a path
    temporary.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    temporary.replace(path)


def _report_exit(trainer: Trainer | None, environ: Mapping[str, str]) -> None:
    """The newest durable checkpoint, in the pod's termination message (local rank 0)."""
    if trainer is None or trainer.place.local_rank != 0 or trainer.last_durable is None:
        return
    step, saved_at = trainer.last_durable
    write_termination_message(
        termination_message(checkpoint_step=step, checkpoint_unix=saved_at), environ
    )


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Train; returns the contract's exit code."""
    preemption = PreemptionFlag()
    preemption.install()
    try:
        place = ProcessPlace.from_environ(environ)
        configure_logging("trainer", rank=place.rank)
        config = parse_config(argv, environ)
        backend = resolve_backend(config.backend)
    except ConfigError as error:
        configure_logging("trainer")
        log.error("configuration: %s", error)
        return contract.EXIT_USAGE
    metrics = TrainerMetrics.create()
    metrics.info.info(
        {
            "job": config.job,
            "restart_count": str(config.restart_count),
            "world_size": str(place.world_size),
            "node_rank": str(place.node_rank),
            "gpu_indices": ",".join(map(str, config.gpu_indices)),
            "backend": backend,
            "model": config.model.name,
        }
    )
    if config.metrics_port and place.local_rank == 0:
        metrics.serve(config.metrics_port)
    log.info(
        "job=%s restart=%d rank=%d/%d node_rank=%d backend=%s model=%s gpus=%s",
        config.job,
        config.restart_count,
        place.rank,
        place.world_size,
        place.node_rank,
        backend,
        config.model.name,
        ",".join(map(str, config.gpu_indices)) or "-",
    )
    try:
        collectives = Collectives(place, backend, config.timeout_seconds)
    except Exception:  # rendezvous timeout, unreachable master, NCCL init
        log.exception("joining the process group failed")
        return contract.EXIT_FAILED
    trainer: Trainer | None = None
    try:
        trainer = Trainer(config, collectives, metrics, preemption)
        report = trainer.run()
    except ConfigError as error:
        log.error("configuration: %s", error)
        return contract.EXIT_USAGE
    except Exception:
        log.exception("training failed")
        return contract.EXIT_FAILED
    finally:
        collectives.close()
        _report_exit(trainer, environ)
    if config.summary_file:
        _write_summary(config.summary_file, report)
    if report.outcome is Outcome.PREEMPTED:
        return contract.EXIT_PREEMPTED
    return contract.EXIT_SUCCEEDED


def main() -> None:
    code = run(sys.argv[1:], os.environ)
    # Everything durable is already flushed and fsynced (checkpoints, the summary).
    # Skipping interpreter teardown saves seconds of unloading torch, which count
    # against the preemption grace period.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
