"""Simulated gpupool node agents as subprocesses, one per kwok node, for e2e scenarios.

One agent per node (selected by its ``kubernetes.io/hostname`` label) so a test
can silence a single node's agent (``SIGSTOP``) while the others keep
reporting. Each agent has its own fault file; :meth:`NodeAgents.inject` writes
it atomically (the agent re-reads it when it changes). ``close`` resumes and
stops every agent by its PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from gpupool.scheduling.model import NodeName
from gpupool.telemetry.faults import Fault, FaultKind, dump_fault_script
from tests.integration.operator_harness import REPO


class NodeAgents:
    def __init__(
        self,
        nodes: list[str],
        *,
        env: dict[str, str],
        workdir: Path,
        interval_s: float = 0.5,
        heartbeat_s: float = 2.0,
    ) -> None:
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.fault_files = {node: workdir / f"faults-{node}.json" for node in nodes}
        for node in nodes:
            log = (workdir / f"agent-{node}.log").open("wb")
            with log:
                self.processes[node] = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gpupool.telemetry.agent",
                        "--simulated",
                        f"--nodes-selector=kubernetes.io/hostname={node}",
                        f"--faults={self.fault_files[node]}",
                        "--metrics-port=0",
                        f"--interval-s={interval_s}",
                        f"--heartbeat-s={heartbeat_s}",
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=REPO,
                )

    def inject(self, node: str, gpu: int, *, xid: int) -> None:
        """An XID on ``node``'s GPU ``gpu`` at the agent's next read."""
        fault = Fault(at_s=0, node=NodeName(node), gpu=gpu, kind=FaultKind.XID, xid=xid)
        path = self.fault_files[node]
        staged = path.with_suffix(".tmp")
        staged.write_text(dump_fault_script([fault]))
        os.replace(staged, path)

    def pause(self, node: str) -> None:
        """Silence the node's agent (alive but hung: no more reports)."""
        self.processes[node].send_signal(signal.SIGSTOP)

    def resume(self, node: str) -> None:
        self.processes[node].send_signal(signal.SIGCONT)

    def log_tail(self, node: str, lines: int = 20) -> str:
        text = (self.workdir / f"agent-{node}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is not None:
                continue
            process.send_signal(signal.SIGCONT)
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
