"""Sharding of each epoch into global batches, resumable at any global sample offset.

``torch.utils.data.DistributedSampler`` shards a whole epoch by ``rank::world_size``,
so the samples already consumed depend on the world size and an epoch cannot be
resumed in the middle under a different one. Here every epoch is one seeded
permutation, consumed as a sequence of *global* batches of ``batch_size *
world_size`` samples; rank ``r`` takes slice ``r`` of each global batch. After ``k``
steps exactly the first ``offset + k * global_batch`` samples of the permutation are
consumed, whatever the world size, so a checkpoint's ``samples_in_epoch`` resumes
the epoch exactly with any number of ranks. The tail that does not fill a global
batch is dropped (like ``drop_last=True``), so every rank runs the same number of
steps and no collective is left waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, kw_only=True)
class GlobalBatchSampler:
    num_samples: int
    batch_size: int
    """Per rank."""
    world_size: int
    rank: int
    seed: int

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def steps_per_epoch(self) -> int:
        return self.num_samples // self.global_batch

    def epoch_permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_samples, generator=generator)

    def rank_batches(self, epoch: int, samples_in_epoch: int) -> torch.Tensor:
        """This rank's remaining batches of ``epoch``: shape ``(steps, batch_size)``.

        ``samples_in_epoch`` is the global number already consumed (from a checkpoint);
        it need not be a multiple of this world size's global batch.
        """
        remaining = self.epoch_permutation(epoch)[samples_in_epoch:]
        steps = remaining.numel() // self.global_batch
        used = remaining[: steps * self.global_batch]
        return used.view(steps, self.world_size, self.batch_size)[:, self.rank, :]
