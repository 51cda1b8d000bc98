"""Host ports for pods that all share this host's network."""

from __future__ import annotations

import socket
import threading


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PortTable:
    """Free host ports, shared by key: every pod of a gang gets the same rendezvous port."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared: dict[tuple[str, int], int] = {}

    def shared(self, key: str, container_port: int) -> int:
        with self._lock:
            found = self._shared.get((key, container_port))
            if found is None:
                found = self._shared[(key, container_port)] = free_port()
            return found

    def private(self) -> int:
        return free_port()
