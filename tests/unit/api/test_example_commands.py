"""The examples' containers follow the pod contract of workloads/README.md.

Training workers run the launcher with flags the built-in trainer accepts;
servers run the inference server with flags it accepts and a model URI it can
read. Checked with the workloads' own parsers, so a flag the trainer does not
know (which would exit 2 in the pod) fails here.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest

pytest.importorskip("torch")  # the trainer's and server's parsers import it

from gpupool.api.trainingjob import TorchSpec
from gpupool_workloads import contract
from gpupool_workloads.launch import TRAINER_COMMAND, worker_command
from gpupool_workloads.server.config import parse_config as parse_server_config
from gpupool_workloads.server.loader import resolve_model_path
from gpupool_workloads.trainer.config import Backend as TrainerBackend
from gpupool_workloads.trainer.config import parse_config as parse_trainer_config
from tests.unit.api.example_files import gpupool_objects, valid_files

LAUNCHER = ["python", "-m", "gpupool_workloads.launch", "--"]
SERVER = ["python", "-m", "gpupool_workloads.server"]


def _examples(kind: str) -> list[dict[str, Any]]:
    return [obj for path in valid_files() for obj in gpupool_objects(path) if obj["kind"] == kind]


def _argv(obj: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The first container's ``command`` and ``args``."""
    container = obj["spec"]["template"]["spec"]["containers"][0]
    return list(container.get("command") or []), [str(arg) for arg in container.get("args") or []]


def _name(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])


@pytest.mark.parametrize("job", _examples("TrainingJob"), ids=_name)
def test_training_workers_start_the_launcher_with_valid_trainer_flags(
    job: dict[str, Any],
) -> None:
    command, args = _argv(job)
    assert command == LAUNCHER
    worker = worker_command(["--", *args])
    assert worker[: len(TRAINER_COMMAND)] == list(TRAINER_COMMAND)
    config = parse_trainer_config(worker[len(TRAINER_COMMAND) :], {})
    assert config.max_steps is not None  # every example says when it is done


@pytest.mark.parametrize("service", _examples("InferenceService"), ids=_name)
def test_servers_run_the_inference_server_on_a_readable_model_uri(
    service: dict[str, Any],
) -> None:
    command, args = _argv(service)
    assert command == SERVER
    uri = service["spec"]["model"]["uri"]
    config = parse_server_config(args, {contract.ENV_MODEL_URI: uri})
    assert str(resolve_model_path(config.model_uri, mount_root=config.model_mount_root)).startswith(
        contract.DEFAULT_MODEL_MOUNT_ROOT + "/"
    )


def test_trainer_flags_are_checked_for_real() -> None:
    with pytest.raises(SystemExit):
        parse_trainer_config(["--model", "bert-large", "--steps", "100000"], {})


def test_the_api_offers_exactly_the_trainers_backends() -> None:
    api = set(get_args(TorchSpec.model_fields["backend"].annotation))
    assert api == set(get_args(TrainerBackend)) == {"auto", "nccl", "gloo"}
