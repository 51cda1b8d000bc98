"""Trainer configuration: the pod's environment by default, flags override, bad input refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpupool_workloads.errors import ConfigError
from gpupool_workloads.models import ModelSpec, build_model
from gpupool_workloads.trainer.config import parse_config

POD_ENV = {
    "GPUPOOL_CHECKPOINT_DIR": "/ckpt",
    "GPUPOOL_CHECKPOINT_EVERY_SECONDS": "120",
    "GPUPOOL_METRICS_PORT": "9400",
    "GPUPOOL_JOB": "bert",
    "GPUPOOL_RESTART_COUNT": "3",
    "GPUPOOL_GPU_INDICES": "4,5",
    "GPUPOOL_TORCH_BACKEND": "gloo",
}


def test_environment_supplies_the_defaults() -> None:
    config = parse_config([], POD_ENV)
    assert config.checkpoint_dir == Path("/ckpt")
    assert config.checkpoint_every_seconds == 120
    assert config.metrics_port == 9400
    assert (config.job, config.restart_count, config.gpu_indices) == ("bert", 3, (4, 5))
    assert config.backend == "gloo"
    assert config.model == ModelSpec(name="mlp", input_shape=(32,), num_classes=10)


def test_flags_override_the_environment() -> None:
    config = parse_config(
        ["--checkpoint-dir", "/elsewhere", "--checkpoint-every-seconds", "5", "--backend", "auto",
         "--model", "tinycnn", "--input-shape", "3,8,8", "--model-kwargs", '{"channels": 4}'],
        POD_ENV,
    )  # fmt: skip
    assert config.checkpoint_dir == Path("/elsewhere")
    assert config.checkpoint_every_seconds == 5
    assert config.backend == "auto"
    assert config.model.input_shape == (3, 8, 8)
    assert dict(config.model.kwargs) == {"channels": 4}


def test_without_a_checkpoint_dir_nothing_is_saved() -> None:
    assert parse_config([], {}).checkpoint_dir is None


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--batch-size", "0"], {}),
        (["--model", "pkg.mod:Net"], {}),  # an imported model needs --input-shape
        (["--input-shape", "3,x"], {}),
        (["--model-kwargs", "[1]"], {}),
        ([], {"GPUPOOL_CHECKPOINT_EVERY_SECONDS": "soon"}),
        ([], {"GPUPOOL_TORCH_BACKEND": "mpi"}),
        ([], {"GPUPOOL_GPU_INDICES": "0,one"}),
    ],
)
def test_bad_configuration_is_refused(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        parse_config(argv, env)


def test_models_by_name_and_by_import_path() -> None:
    net = build_model(ModelSpec(name="tinycnn", input_shape=(1, 16, 16), num_classes=3))
    assert net(torch.zeros(2, 1, 16, 16)).shape == (2, 3)
    linear = build_model(
        ModelSpec(
            name="torch.nn:Linear",
            input_shape=(5,),
            num_classes=2,
            kwargs={"in_features": 5, "out_features": 2},
        )
    )
    assert isinstance(linear, torch.nn.Linear)
    with pytest.raises(ValueError, match="unknown model"):
        build_model(ModelSpec(name="resnet9000", input_shape=(1,), num_classes=2))
