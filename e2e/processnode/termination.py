"""A container's termination message, as the kubelet reads it when the container exits.

The kubelet gives every container a fresh ``terminationMessagePath`` file
(``/dev/termination-log``); here that is a host file of the pod, named to the
process by ``GPUPOOL_TERMINATION_LOG``. At exit the file (at most 4096 bytes)
becomes ``state.terminated.message``; when it is empty, the container failed and its
``terminationMessagePolicy`` is ``FallbackToLogsOnError``, the tail of its log
(the last 80 lines, at most 2048 bytes) is the message instead.
"""

from __future__ import annotations

from pathlib import Path

ENV_TERMINATION_LOG = "GPUPOOL_TERMINATION_LOG"
"""The workloads contract's override of the termination message file."""
MAX_MESSAGE_BYTES = 4096
FALLBACK_LINES = 80
FALLBACK_BYTES = 2048


def _read_tail(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            file.seek(max(0, size - limit))
            return file.read()
    except OSError:
        return b""


def termination_message(
    *, message_file: Path, log_path: Path, exit_code: int, policy: str | None
) -> str:
    """The message of a container that exited with ``exit_code``."""
    try:
        with message_file.open("rb") as file:
            written = file.read(MAX_MESSAGE_BYTES)
    except OSError:
        written = b""
    if written.strip() or exit_code == 0 or policy != "FallbackToLogsOnError":
        return written.decode(errors="replace")
    tail = _read_tail(log_path, FALLBACK_BYTES).decode(errors="replace")
    return "\n".join(tail.splitlines()[-FALLBACK_LINES:])
