"""``python -m gpupool_workloads.bench``: print (and optionally save) the workload figures."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from gpupool_workloads.bench.inference_bench import InferenceBenchConfig, run_inference_bench
from gpupool_workloads.bench.trainer_bench import TrainerBenchConfig, run_trainer_bench


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpupool_workloads.bench")
    parser.add_argument("--only", choices=["trainer", "inference"], default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    trainer = parser.add_argument_group("trainer")
    trainer.add_argument("--nproc", type=int, default=2)
    trainer.add_argument("--steps", type=int, default=600)
    trainer.add_argument("--batch-size", type=int, default=64)
    trainer.add_argument("--model", default="mlp")
    trainer.add_argument("--model-kwargs", default='{"hidden": 512}')
    trainer.add_argument("--checkpoint-every-seconds", type=float, default=5.0)
    trainer.add_argument("--repeats", type=int, default=4)
    trainer.add_argument("--backend", choices=["gloo", "nccl"], default="gloo")
    serving = parser.add_argument_group("inference")
    serving.add_argument("--clients", type=int, default=16)
    serving.add_argument("--seconds", type=float, default=10.0)
    serving.add_argument("--hidden", type=int, default=4096)
    serving.add_argument("--max-batch-size", type=int, default=32)
    serving.add_argument("--max-wait-ms", type=float, default=2.0)
    return parser


def _print_summary(results: dict[str, Any]) -> None:
    trainer = results.get("trainer")
    if trainer:
        bare, wrapped = trainer["bare_samples_per_second"], trainer["wrapped_samples_per_second"]
        print(
            f"trainer ({trainer['processes']} procs, {trainer['model']} "
            f"{trainer['model_kwargs']}, global batch {trainer['global_batch']}): "
            f"bare {min(bare):.0f}..{max(bare):.0f} samples/s, "
            f"wrapped {min(wrapped):.0f}..{max(wrapped):.0f} samples/s, "
            f"ratio of medians {trainer['wrapped_over_bare_ratio']:.3f} "
            f"(of bests {trainer['wrapped_over_bare_ratio_best']:.3f})",
            file=sys.stderr,
        )
        if trainer["checkpoint_seconds_median"] is not None:
            print(
                f"checkpoint: {trainer['checkpoints_written']} written, median "
                f"{trainer['checkpoint_seconds_median'] * 1000:.1f} ms, max "
                f"{trainer['checkpoint_seconds_max'] * 1000:.1f} ms, "
                f"{trainer['checkpoint_bytes'] / 1e6:.2f} MB",
                file=sys.stderr,
            )
    inference = results.get("inference")
    if inference:
        for name in ("batching_on", "batching_off"):
            row = inference[name]
            print(
                f"inference {name} (max batch {row['max_batch_size']}, {inference['clients']} "
                f"clients): {row['throughput_rps']:.0f} req/s, p50 {row['p50_ms']:.1f} ms, "
                f"p99 {row['p99_ms']:.1f} ms, mean batch {row['mean_batch_size'] or 0:.1f}, "
                f"errors {row['errors']}",
                file=sys.stderr,
            )


def main() -> None:
    args = _parser().parse_args()
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        }
    }
    if args.only in (None, "trainer"):
        results["trainer"] = run_trainer_bench(
            TrainerBenchConfig(
                nproc=args.nproc,
                steps=args.steps,
                batch_size=args.batch_size,
                model=args.model,
                model_kwargs=args.model_kwargs,
                checkpoint_every_seconds=args.checkpoint_every_seconds,
                repeats=args.repeats,
                backend=args.backend,
            )
        )
    if args.only in (None, "inference"):
        results["inference"] = run_inference_bench(
            InferenceBenchConfig(
                clients=args.clients,
                seconds=args.seconds,
                model_kwargs={"hidden": args.hidden},
                max_batch_size=args.max_batch_size,
                max_wait_ms=args.max_wait_ms,
            )
        )
    _print_summary(results)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
