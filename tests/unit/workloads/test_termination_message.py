"""The trainer's exit report in the termination message file (no torch needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gpupool_workloads import contract, termination
from gpupool_workloads.termination import (
    termination_log_path,
    termination_message,
    write_termination_message,
)

SAVED_AT = datetime(2025, 3, 4, 5, 6, 7, 800_000, tzinfo=UTC).timestamp()


def test_the_message_is_one_json_line_of_step_and_utc_time() -> None:
    message = termination_message(checkpoint_step=1200, checkpoint_unix=SAVED_AT)
    assert "\n" not in message
    assert json.loads(message) == {
        "lastCheckpointStep": 1200,
        "lastCheckpointTime": "2025-03-04T05:06:07Z",
    }


def test_the_environment_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "termination-log"
    target.write_text("an older report\n")
    env = {contract.ENV_TERMINATION_LOG: str(target)}
    assert write_termination_message('{"lastCheckpointStep":3}', env) == target
    assert target.read_text() == '{"lastCheckpointStep":3}\n'


def test_the_default_file_is_written_only_where_the_kubelet_made_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / "dev-termination-log"
    monkeypatch.setattr(termination.contract, "DEFAULT_TERMINATION_LOG", str(default))
    assert termination_log_path({}) is None
    assert write_termination_message("{}", {}) is None
    assert not default.exists()
    default.touch()
    assert write_termination_message("{}", {}) == default
    assert default.read_text() == "{}\n"


def test_an_unwritable_file_is_skipped(tmp_path: Path) -> None:
    env = {contract.ENV_TERMINATION_LOG: str(tmp_path)}  # a directory: cannot be written
    assert write_termination_message("{}", env) is None
