"""SIGTERM/SIGINT as a request to stop at the next safe point.

The handler only records the signal; the training loop (or the server) polls
:attr:`PreemptionFlag.requested` at a step boundary and does the real work there,
outside the signal handler.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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
