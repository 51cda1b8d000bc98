"""SIGTERM/SIGINT as a request to stop at the next safe point.

The handler only records the signal; the training loop (or the server) polls
:attr:`PreemptionFlag.requested` at a step boundary and does the real work there,
outside the signal handler.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def main_thread_receives_stop_signals() -> Iterator[None]:
    """Start threads inside this block so that SIGTERM/SIGINT reach the main thread only.

    Python runs signal handlers in the main thread, but the kernel may deliver a
    process signal to any thread that does not block it; one delivered to another
    thread does not wake a main thread blocked in a wait, and the handler would
    not run until something else woke it. Threads inherit the signal mask of the
    thread that starts them, so threads started in here (and their descendants)
    block the stop signals; the main thread unblocks them on the way out, and a
    signal that arrived meanwhile is delivered then. Start no *processes* in here:
    they would inherit the mask too and never see SIGTERM.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class PreemptionFlag:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    def install(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        for signum in signals:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal_name is None:
            self.signal_name = signal.Signals(signum).name
        self._event.set()

    def request(self, reason: str = "requested") -> None:
        """Ask for a stop from code (tests, the server's own shutdown path)."""
        if self.signal_name is None:
            self.signal_name = reason
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)
