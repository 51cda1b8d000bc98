"""Model URIs, waiting for the model to appear, and loading checkpoints or TorchScript."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from gpupool_workloads import checkpoint
from gpupool_workloads.errors import ConfigError
from gpupool_workloads.models import ModelSpec, build_model
from gpupool_workloads.server.loader import load_model, resolve_model_path, wait_for_model_file

SPEC = ModelSpec(name="mlp", input_shape=(8,), num_classes=3, kwargs={"hidden": 16})
CPU = torch.device("cpu")


def save_checkpoint(directory: Path, step: int) -> tuple[torch.nn.Module, Path]:
    model = build_model(SPEC)
    payload = {
        "format": checkpoint.FORMAT,
        "model": SPEC.to_dict(),
        "model_state": model.state_dict(),
        "progress": {"step": step},
    }
    return model, checkpoint.write_checkpoint(directory, step, payload)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/models/a.pt", "/models/a.pt"),
        ("file:///models/a.pt", "/models/a.pt"),
        ("pvc://models/resnet50.pt", "/mnt/models/models/resnet50.pt"),
        ("pvc://team-a-models/sub/dir/ckpt", "/mnt/models/team-a-models/sub/dir/ckpt"),
    ],
)
def test_model_uris(uri: str, expected: str) -> None:
    assert resolve_model_path(uri, mount_root="/mnt/models") == Path(expected)


def test_unknown_uri_schemes_are_refused() -> None:
    with pytest.raises(ConfigError, match="s3"):
        resolve_model_path("s3://bucket/model.pt", mount_root="/mnt/models")


def test_a_checkpoint_directory_serves_its_newest_checkpoint(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 5)
    newest, _ = save_checkpoint(tmp_path, 7)
    found = wait_for_model_file(tmp_path, timeout_seconds=1, stop=threading.Event())
    assert found is not None
    loaded = load_model(found, device=CPU)
    assert (loaded.kind, loaded.name, loaded.step, loaded.input_shape) == (
        "checkpoint",
        "mlp",
        7,
        (8,),
    )
    inputs = torch.randn(4, 8)
    assert torch.equal(loaded.module(inputs), newest.eval()(inputs))


def test_torchscript_files_load_with_the_given_input_shape(tmp_path: Path) -> None:
    model = build_model(SPEC).eval()
    torch.jit.script(model).save(str(tmp_path / "scripted.pt"))  # type: ignore[no-untyped-call]
    loaded = load_model(tmp_path / "scripted.pt", device=CPU, input_shape=(8,))
    assert (loaded.kind, loaded.input_shape, loaded.step) == ("torchscript", (8,), None)
    inputs = torch.randn(2, 8)
    assert torch.allclose(loaded.module(inputs), model(inputs))


def test_exported_programs_with_a_dynamic_batch_load(tmp_path: Path) -> None:
    model = build_model(SPEC).eval()
    batch = torch.export.Dim("batch")
    exported = torch.export.export(model, (torch.randn(2, 8),), dynamic_shapes=({0: batch},))
    torch.export.save(exported, tmp_path / "exported.pt2")
    loaded = load_model(tmp_path / "exported.pt2", device=CPU, input_shape=(8,))
    assert loaded.kind == "export"
    inputs = torch.randn(5, 8)
    assert torch.allclose(loaded.module(inputs), model(inputs))


def test_waiting_gives_up_at_the_deadline_or_when_stopped(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no model"):
        wait_for_model_file(tmp_path / "absent", timeout_seconds=0.3, stop=threading.Event())
    stopped = threading.Event()
    stopped.set()
    assert wait_for_model_file(tmp_path / "absent", timeout_seconds=30, stop=stopped) is None


def test_a_file_that_is_no_model_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "notes.pt").write_text("hello")
    with pytest.raises(ConfigError, match="neither a checkpoint"):
        load_model(tmp_path / "notes.pt", device=CPU)
