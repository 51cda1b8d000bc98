"""The baseline for the trainer's overhead: the same DDP steps with nothing around them.

Same model, data, sampler, optimizer and batch as the trainer, but no control
all-reduce, no checkpoints, no metrics, no logging. Started by the launcher like
the trainer; rank 0 writes ``{"samples_per_second": ...}`` to ``--summary-file``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gpupool_workloads.models import DEFAULT_INPUT_SHAPES, ModelSpec, build_model
from gpupool_workloads.trainer.data import synthetic_dataset
from gpupool_workloads.trainer.sampler import GlobalBatchSampler

WARMUP_STEPS = 5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--model-kwargs", default="{}")
    parser.add_argument("--synthetic-samples", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-steps", type=int, required=True)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--summary-file", required=True)
    parser.add_argument("--backend", choices=["gloo", "nccl"], default="gloo")
    args, _ = parser.parse_known_args()

    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = torch.device("cpu")
    if args.backend == "nccl":  # as the trainer does on GPUs: NCCL, bf16 autocast
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group(
        args.backend, rank=rank, world_size=world_size, timeout=timedelta(seconds=60)
    )
    spec = ModelSpec(
        name=args.model,
        input_shape=DEFAULT_INPUT_SHAPES[args.model],
        num_classes=10,
        kwargs=json.loads(args.model_kwargs),
    )
    torch.manual_seed(0)
    data = synthetic_dataset(spec, samples=args.synthetic_samples, seed=0)
    sampler = GlobalBatchSampler(
        num_samples=len(data),
        batch_size=args.batch_size,
        world_size=world_size,
        rank=rank,
        seed=0,
    )
    device_ids = [device.index] if device.type == "cuda" else None
    model = DistributedDataParallel(build_model(spec).to(device), device_ids=device_ids)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    step, epoch, warm_at = 0, 0, 0.0
    while step < args.max_steps:
        for indices in sampler.rank_batches(epoch, 0):  # the trainer's data path
            inputs = data.inputs[indices].to(device, non_blocking=True)
            targets = data.targets[indices].to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            step += 1
            if step == WARMUP_STEPS:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                warm_at = time.monotonic()
            if step >= args.max_steps:
                break
        epoch += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.monotonic() - warm_at
    rate = (step - WARMUP_STEPS) * sampler.global_batch / elapsed
    if rank == 0:
        path = Path(args.summary_file.replace("{rank}", "0"))
        path.write_text(json.dumps({"samples_per_second": rate, "step": step}))
    dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
