"""The worker pod's entry point: start one process per GPU, forward SIGTERM, map exit codes.

It does what ``torchrun --nnodes $WORLD_SIZE --node-rank $NODE_RANK --nproc-per-node
$NPROC_PER_NODE --master-addr $MASTER_ADDR --master-port $MASTER_PORT`` does for a
static gang (the same per-process variables: RANK, LOCAL_RANK, WORLD_SIZE = nodes x
nproc, LOCAL_WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE), minus torchrun's own restarts
(the operator restarts whole gangs) and plus an exit code the operator can read:
torchrun answers SIGTERM by killing its workers after its own timeout and exits 1,
so "preempted, checkpoint saved" would look like "failed".

Usage::

    python -m gpupool_workloads.launch [--nproc-per-node N] [--] [COMMAND ...]

COMMAND defaults to the built-in trainer; if its first word starts with ``-`` the
words are flags for the built-in trainer.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from gpupool_workloads import contract
from gpupool_workloads.envparse import env_int, env_str
from gpupool_workloads.errors import ConfigError
from gpupool_workloads.logs import configure_logging
from gpupool_workloads.preemption import main_thread_receives_stop_signals

log = logging.getLogger("gpupool.launch")

TRAINER_COMMAND = (sys.executable, "-m", "gpupool_workloads.trainer")
DEFAULT_FAILURE_GRACE_SECONDS = 30.0


@dataclass(frozen=True, kw_only=True)
class NodePlan:
    nodes: int
    node_rank: int
    nproc_per_node: int
    master_addr: str
    master_port: int


def resolve_nproc(raw: str | None, *, visible_gpus: Callable[[], int]) -> int:
    """``NPROC_PER_NODE``: an integer, or ``auto``/unset (one per visible GPU, at least 1)."""
    if raw is None or raw == "auto":
        return max(visible_gpus(), 1)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"NPROC_PER_NODE={raw!r} is neither an integer nor 'auto'") from None
    if value <= 0:
        raise ConfigError(f"NPROC_PER_NODE={value} must be positive")
    return value


def plan_node(
    pod_env: Mapping[str, str], *, nproc_override: str | None, visible_gpus: Callable[[], int]
) -> NodePlan:
    """Read the operator's pod environment (WORLD_SIZE counts pods, i.e. nodes)."""
    nodes = env_int(pod_env, contract.ENV_WORLD_SIZE, 1) or 1
    node_rank = env_int(pod_env, contract.ENV_NODE_RANK, 0) or 0
    if nodes <= 0 or not 0 <= node_rank < nodes:
        raise ConfigError(f"NODE_RANK={node_rank} must lie in [0, WORLD_SIZE={nodes})")
    master_addr = env_str(pod_env, contract.ENV_MASTER_ADDR)
    if master_addr is None:
        if nodes > 1:
            raise ConfigError("MASTER_ADDR is required when WORLD_SIZE > 1")
        master_addr = "127.0.0.1"
    raw_nproc = nproc_override or env_str(pod_env, contract.ENV_NPROC_PER_NODE)
    return NodePlan(
        nodes=nodes,
        node_rank=node_rank,
        nproc_per_node=resolve_nproc(raw_nproc, visible_gpus=visible_gpus),
        master_addr=master_addr,
        master_port=env_int(pod_env, contract.ENV_MASTER_PORT, contract.DEFAULT_MASTER_PORT)
        or contract.DEFAULT_MASTER_PORT,
    )


def worker_environments(pod_env: Mapping[str, str], plan: NodePlan) -> list[dict[str, str]]:
    """The environment of each local worker process, torchrun-compatible."""
    world_size = plan.nodes * plan.nproc_per_node
    environments = []
    for local_rank in range(plan.nproc_per_node):
        env = dict(pod_env)
        env.update(
            {
                contract.ENV_MASTER_ADDR: plan.master_addr,
                contract.ENV_MASTER_PORT: str(plan.master_port),
                contract.ENV_WORLD_SIZE: str(world_size),
                contract.ENV_RANK: str(plan.node_rank * plan.nproc_per_node + local_rank),
                contract.ENV_LOCAL_RANK: str(local_rank),
                contract.ENV_LOCAL_WORLD_SIZE: str(plan.nproc_per_node),
                contract.ENV_GROUP_RANK: str(plan.node_rank),
                contract.ENV_GROUP_WORLD_SIZE: str(plan.nodes),
                contract.ENV_NODE_RANK: str(plan.node_rank),
            }
        )
        if plan.nproc_per_node > 1:
            env.setdefault("OMP_NUM_THREADS", "1")  # as torchrun: no oversubscription
        environments.append(env)
    return environments


def exit_code_for(worker_codes: Sequence[int]) -> int:
    """The pod's exit code from its workers' codes, listed in the order they exited.

    All 0: succeeded. Only 0 and EXIT_PREEMPTED: preempted. Otherwise the first
    failure decides: its code, or 128 + signal number for a worker killed by a signal.
    """
    for code in worker_codes:
        if code not in (contract.EXIT_SUCCEEDED, contract.EXIT_PREEMPTED):
            return 128 - code if code < 0 else code
    if contract.EXIT_PREEMPTED in worker_codes:
        return contract.EXIT_PREEMPTED
    return contract.EXIT_SUCCEEDED


def worker_command(command: Sequence[str]) -> list[str]:
    words = list(command)
    if words and words[0] == "--":
        words = words[1:]
    if not words or words[0].startswith("-"):
        return [*TRAINER_COMMAND, *words]
    return words


class Gang:
    """The local worker processes: started together, signalled together, reaped in order."""

    def __init__(self, command: Sequence[str], environments: Sequence[Mapping[str, str]]) -> None:
        self._exits: queue.Queue[tuple[int, int]] = queue.Queue()
        self._processes = [subprocess.Popen(list(command), env=dict(env)) for env in environments]

    def start_reapers(self) -> None:
        """One thread per worker waits for its exit. Start them with the stop signals
        blocked (not the workers: they would inherit the mask and never see SIGTERM)."""
        for process in self._processes:
            threading.Thread(target=self._reap, args=(process,), daemon=True).start()

    def _reap(self, process: subprocess.Popen[bytes]) -> None:
        self._exits.put((process.pid, process.wait()))

    def signal_all(self, signum: int) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signum)

    def next_exit(self, timeout: float | None) -> tuple[int, int] | None:
        try:
            return self._exits.get(timeout=timeout)
        except queue.Empty:
            return None

    def __len__(self) -> int:
        return len(self._processes)


def supervise(gang: Gang, *, failure_grace_seconds: float) -> int:
    """Wait for every worker; on the first failure, stop the rest (SIGTERM, then SIGKILL)."""
    codes: list[int] = []
    stopping_since: float | None = None
    while len(codes) < len(gang):
        timeout = None
        if stopping_since is not None:
            timeout = max(stopping_since + failure_grace_seconds - time.monotonic(), 0.0)
        exited = gang.next_exit(timeout)
        if exited is None:
            log.error("workers still running %.0fs after a failure: killing", failure_grace_seconds)
            gang.signal_all(signal.SIGKILL)
            stopping_since = None
            continue
        pid, code = exited
        codes.append(code)
        log.info("worker pid=%d exited with %d", pid, code)
        failed = code not in (contract.EXIT_SUCCEEDED, contract.EXIT_PREEMPTED)
        if failed and stopping_since is None and len(codes) < len(gang):
            log.error("worker pid=%d failed: stopping the other workers", pid)
            gang.signal_all(signal.SIGTERM)
            stopping_since = time.monotonic()
    return exit_code_for(codes)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gpupool_workloads.launch",
        description="Start this pod's share of a gpupool training gang.",
    )
    parser.add_argument("--nproc-per-node", default=None, help="overrides NPROC_PER_NODE")
    parser.add_argument(
        "--failure-grace-seconds", type=float, default=DEFAULT_FAILURE_GRACE_SECONDS
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser.parse_args(list(argv))


def _visible_gpus() -> int:
    try:
        import torch  # noqa: PLC0415 - only when NPROC_PER_NODE is auto: torch is slow to import

        return torch.cuda.device_count()
    except ImportError:
        return 0


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    configure_logging("launch")
    args = _parse(argv)
    try:
        plan = plan_node(environ, nproc_override=args.nproc_per_node, visible_gpus=_visible_gpus)
    except ConfigError as error:
        log.error("configuration: %s", error)
        return contract.EXIT_USAGE
    gang: Gang | None = None
    early: list[int] = []  # signals that came before there were workers to forward them to

    def forward(signum: int, _frame: FrameType | None) -> None:
        if gang is None:
            early.append(signum)
        else:
            gang.signal_all(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    command = worker_command(args.command)
    log.info(
        "node %d/%d: %d workers, master %s:%d, command %s",
        plan.node_rank,
        plan.nodes,
        plan.nproc_per_node,
        plan.master_addr,
        plan.master_port,
        " ".join(command),
    )
    gang = Gang(command, worker_environments(environ, plan))
    with main_thread_receives_stop_signals():  # the reaper threads must not take SIGTERM
        gang.start_reapers()
    for signum in early[:1]:
        gang.signal_all(signum)
    code = supervise(gang, failure_grace_seconds=args.failure_grace_seconds)
    log.info("exiting with %d", code)
    return code


def main() -> None:
    sys.exit(run(sys.argv[1:], os.environ))


if __name__ == "__main__":
    main()
