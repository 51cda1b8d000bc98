"""Process-group setup and the few collectives the training loop needs.

Data-parallel gradients go over the main backend (NCCL on GPUs, gloo on CPU).
Control decisions (preempt? checkpoint now?), RNG-state gathering and log
averages go over a gloo group on CPU tensors, so they never touch CUDA streams.
A single process (no ``WORLD_SIZE``) runs without a process group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from gpupool_workloads import contract
from gpupool_workloads.envparse import env_int
from gpupool_workloads.errors import ConfigError
from gpupool_workloads.trainer.config import Backend


@dataclass(frozen=True, kw_only=True)
class ProcessPlace:
    """Where this process sits, from the variables the launcher (or torchrun) sets."""

    rank: int
    local_rank: int
    world_size: int
    node_rank: int

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProcessPlace:
        world_size = env_int(environ, contract.ENV_WORLD_SIZE, 1) or 1
        rank = env_int(environ, contract.ENV_RANK, 0) or 0
        local_rank = env_int(environ, contract.ENV_LOCAL_RANK, 0) or 0
        node_rank = env_int(environ, contract.ENV_GROUP_RANK, 0) or 0
        if not 0 <= rank < world_size:
            raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={world_size}")
        if world_size > 1 and contract.ENV_MASTER_ADDR not in environ:
            raise ConfigError("WORLD_SIZE > 1 needs MASTER_ADDR and MASTER_PORT")
        return cls(rank=rank, local_rank=local_rank, world_size=world_size, node_rank=node_rank)


def resolve_backend(requested: Backend) -> str:
    if requested != "auto":
        if requested == "nccl" and not torch.cuda.is_available():
            raise ConfigError("--backend nccl needs a CUDA GPU")
        return requested
    if torch.cuda.is_available() and dist.is_nccl_available():
        return "nccl"
    return "gloo"


class Collectives:
    """The process group, or stand-ins that are identities for a single process."""

    def __init__(self, place: ProcessPlace, backend: str, timeout_seconds: float) -> None:
        self.place = place
        self.backend = backend
        self.device = (
            torch.device("cuda", place.local_rank) if backend == "nccl" else torch.device("cpu")
        )
        self._control: Any = None
        self._initialized = False
        if backend == "nccl":
            torch.cuda.set_device(self.device)
        if place.world_size > 1:
            dist.init_process_group(
                backend=backend,
                init_method="env://",
                rank=place.rank,
                world_size=place.world_size,
                timeout=timedelta(seconds=timeout_seconds),
            )
            self._initialized = True
            self._control = (
                dist.new_group(backend="gloo") if backend != "gloo" else dist.group.WORLD
            )

    @property
    def distributed(self) -> bool:
        return self._initialized

    def agree(
        self, *, preempt: bool, checkpoint_due: bool, steps_to_next_sync: int
    ) -> tuple[bool, bool, int]:
        """One tiny all-reduce: any rank preempted? checkpoint due? the smallest proposal."""
        if not self._initialized:
            return preempt, checkpoint_due, steps_to_next_sync
        tensor = torch.tensor([int(preempt), int(checkpoint_due), -steps_to_next_sync])
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=self._control)
        any_preempt, any_due, negative_min = tensor.tolist()
        return bool(any_preempt), bool(any_due), -int(negative_min)

    def all_true(self, flag: bool) -> bool:
        if not self._initialized:
            return flag
        tensor = torch.tensor([int(flag)], dtype=torch.int32)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN, group=self._control)
        return bool(tensor.item())

    def mean(self, value: float) -> float:
        if not self._initialized:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self._control)
        return float(tensor.item()) / self.place.world_size

    def gather_to_all(self, value: object) -> list[object]:
        if not self._initialized:
            return [value]
        gathered: list[object] = [None] * self.place.world_size
        dist.all_gather_object(gathered, value, group=self._control)
        return gathered

    def close(self) -> None:
        if self._initialized:
            dist.destroy_process_group()
            self._initialized = False
