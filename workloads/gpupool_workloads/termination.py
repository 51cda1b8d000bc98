"""The trainer's exit report, written to the container's termination message file.

When a container exits, the kubelet copies the file at its ``terminationMessagePath``
(``/dev/termination-log`` by default) into
``status.containerStatuses[].state.terminated.message``; the operator reads it there
to fill the TrainingJob's ``status.lastCheckpointTime``. The report is one JSON line::

    {"lastCheckpointStep": 1200, "lastCheckpointTime": "2025-01-02T03:04:05Z"}

``GPUPOOL_TERMINATION_LOG`` names another file (tests, the process node). Without it
the default file is written only where it exists (the kubelet creates it in every
container), so a trainer run by hand leaves nothing in ``/dev``. A file that cannot
be written is logged and skipped: the report is informational.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from gpupool_workloads import contract
from gpupool_workloads.envparse import env_str

log = logging.getLogger("gpupool.trainer")


def termination_message(*, checkpoint_step: int, checkpoint_unix: float) -> str:
    """The one-line JSON report of the newest durable checkpoint."""
    moment = datetime.fromtimestamp(int(checkpoint_unix), tz=UTC)
    return json.dumps(
        {
            contract.REPORT_LAST_CHECKPOINT_STEP: checkpoint_step,
            contract.REPORT_LAST_CHECKPOINT_TIME: moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        separators=(",", ":"),
    )


def termination_log_path(environ: Mapping[str, str]) -> Path | None:
    """Where to write the report, or ``None`` when there is nowhere to write it."""
    override = env_str(environ, contract.ENV_TERMINATION_LOG)
    if override is not None:
        return Path(override)
    default = Path(contract.DEFAULT_TERMINATION_LOG)
    return default if default.exists() else None


def write_termination_message(message: str, environ: Mapping[str, str]) -> Path | None:
    """Write ``message`` (replacing what is there); the path written, or ``None``."""
    path = termination_log_path(environ)
    if path is None:
        return None
    try:
        path.write_text(message + "\n")
    except OSError as error:
        log.warning("could not write the termination message to %s: %s", path, error)
        return None
    return path
