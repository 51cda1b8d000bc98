"""Global-batch sharding: equal steps per rank, disjoint shards, resumable under any world size."""

from __future__ import annotations

import pytest

from gpupool_workloads.trainer.sampler import GlobalBatchSampler


def sampler(
    *, world_size: int, rank: int, samples: int = 100, batch: int = 4
) -> GlobalBatchSampler:
    return GlobalBatchSampler(
        num_samples=samples, batch_size=batch, world_size=world_size, rank=rank, seed=7
    )


def consumed(world_size: int, epoch: int, start: int, steps: int, batch: int = 4) -> list[int]:
    """The global samples the first ``steps`` steps consume, in permutation order."""
    shards = [
        sampler(world_size=world_size, rank=rank, batch=batch).rank_batches(epoch, start)[:steps]
        for rank in range(world_size)
    ]
    out: list[int] = []
    for step in range(steps):
        for shard in shards:
            out.extend(shard[step].tolist())
    return out


@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
def test_ranks_get_equal_disjoint_full_batches(world_size: int) -> None:
    shards = [sampler(world_size=world_size, rank=r).rank_batches(0, 0) for r in range(world_size)]
    steps = 100 // (4 * world_size)
    assert {tuple(shard.shape) for shard in shards} == {(steps, 4)}
    flat = [index for shard in shards for index in shard.flatten().tolist()]
    assert len(flat) == len(set(flat)) == steps * 4 * world_size


def test_progress_is_a_prefix_of_the_epoch_permutation_whatever_the_world_size() -> None:
    permutation = sampler(world_size=1, rank=0).epoch_permutation(3).tolist()
    # 3 steps on 4 ranks consume 48 samples; then 2 ranks resume at sample 48.
    before = consumed(4, epoch=3, start=0, steps=3)
    after = consumed(2, epoch=3, start=48, steps=5)
    assert before + after == permutation[: 48 + 40]


def test_resume_at_an_offset_that_is_no_multiple_of_the_new_global_batch() -> None:
    shard = sampler(world_size=3, rank=0).rank_batches(0, 8)  # 8 = 2 steps of 1 rank x 4
    assert shard.shape == ((100 - 8) // 12, 4)


def test_epochs_are_shuffled_differently_and_reproducibly() -> None:
    one = sampler(world_size=1, rank=0)
    assert one.epoch_permutation(0).tolist() != one.epoch_permutation(1).tolist()
    assert (
        one.epoch_permutation(1).tolist()
        == sampler(world_size=2, rank=1).epoch_permutation(1).tolist()
    )


def test_an_exhausted_epoch_has_no_steps() -> None:
    assert sampler(world_size=2, rank=1).rank_batches(0, 96).shape == (0, 4)
