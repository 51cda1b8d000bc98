"""Checkpoint files: atomic, discoverable, pruned, and rejected when foreign."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpupool_workloads import checkpoint
from gpupool_workloads.errors import CheckpointError


def payload(step: int) -> dict[str, object]:
    return {"format": checkpoint.FORMAT, "progress": {"step": step}, "w": torch.arange(4.0)}


def test_write_is_complete_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = checkpoint.write_checkpoint(tmp_path / "ckpt", 12, payload(12))
    assert path.name == "ckpt-000000000012.pt"
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == [path.name]
    loaded = checkpoint.read_checkpoint(path)
    assert loaded["progress"] == {"step": 12}
    assert torch.equal(loaded["w"], torch.arange(4.0))


def test_latest_is_the_highest_step_and_ignores_partial_files(tmp_path: Path) -> None:
    for step in (9, 100, 10):
        checkpoint.write_checkpoint(tmp_path, step, payload(step))
    (tmp_path / ".ckpt-000000000200.pt.123.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    latest = checkpoint.latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "ckpt-000000000100.pt"
    assert checkpoint.latest_checkpoint(tmp_path / "missing") is None


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        checkpoint.write_checkpoint(tmp_path, step, payload(step))
    deleted = checkpoint.prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in deleted] == ["ckpt-000000000001.pt", "ckpt-000000000002.pt"]
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "ckpt-000000000003.pt",
        "ckpt-000000000004.pt",
    ]


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    torch.save({"something": 1}, tmp_path / "other.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00\x01")
    for name in ("other.pt", "garbage.pt"):
        with pytest.raises(CheckpointError):
            checkpoint.read_checkpoint(tmp_path / name)


def test_an_unwritable_directory_is_a_checkpoint_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(CheckpointError):
        checkpoint.write_checkpoint(blocker / "ckpt", 1, payload(1))
