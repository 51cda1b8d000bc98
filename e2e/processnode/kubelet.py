"""The process node's control loop: one thread decides, helper threads only report.

Watch threads (one per node), process waiters, kill timers, restart timers and
readiness probes post events to one queue; :meth:`ProcessNode.run` handles them
in order, so pod state needs no locks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from e2e.processnode.api import NodeApi
from e2e.processnode.node_objects import NodeConfig, lease_manifest, node_manifest, node_status
from e2e.processnode.pod_process import (
    CannotRun,
    HostContext,
    ProcessSpec,
    pod_key,
    process_spec,
)
from e2e.processnode.pod_status import (
    exit_code_of,
    readiness_status,
    running_status,
    terminated_status,
)
from e2e.processnode.ports import PortTable
from e2e.processnode.termination import termination_message

from gpupool.k8s.errors import ApiError

log = logging.getLogger("processnode")

PORTS_ANNOTATION = "processnode.gpupool.io/ports"
HEARTBEAT_SECONDS = 10.0
SHUTDOWN_GRACE_SECONDS = 15.0
MAX_RESTART_BACKOFF_SECONDS = 10.0
CANNOT_RUN_EXIT_CODE = 127

Event = tuple[str, str, Any]
"""(kind, pod key, payload)."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PodRun:
    pod: dict[str, Any]
    spec: ProcessSpec | None = None
    process: subprocess.Popen[bytes] | None = None
    generation: int = 0
    """Bumped per start, so events from an earlier process are recognised as stale."""
    started: datetime = field(default_factory=_now)
    restarts: int = 0
    ready: bool = False
    deleting: bool = False
    finished: bool = False
    timers: list[threading.Timer] = field(default_factory=list)
    probe_stop: threading.Event = field(default_factory=threading.Event)

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class ProcessNode:
    def __init__(
        self,
        api: NodeApi,
        nodes: Sequence[NodeConfig],
        *,
        host: HostContext,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.api = api
        self.nodes = list(nodes)
        self.host = host
        self.clock = clock
        self.ports = PortTable()
        self.events: queue.Queue[Event] = queue.Queue()
        self.runs: dict[str, PodRun] = {}
        self.stopping = threading.Event()

    # -- nodes ---------------------------------------------------------------------------

    def register(self) -> None:
        for node in self.nodes:
            self.api.ensure_node(node_manifest(node))
            self._heartbeat(node)
        log.info("registered nodes %s", ", ".join(node.name for node in self.nodes))

    def _heartbeat(self, node: NodeConfig, *, ready: bool = True) -> None:
        now = self.clock()
        self.api.patch_node_status(node.name, node_status(node, now=now, ready=ready))
        self.api.renew_lease(lease_manifest(node, now=now))

    def _heartbeats(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            for node in self.nodes:
                try:
                    self._heartbeat(node)
                except ApiError as error:
                    log.warning("heartbeat of %s failed: %s", node.name, error)

    def _watch(self, node: str) -> None:
        """List, then watch from that version; relist when the watch ends or fails."""
        while not self.stopping.is_set():
            try:
                pods, version = self.api.list_pods(node)
                for pod in pods:
                    self.events.put(("pod", pod_key(pod), pod))
                for event in self.api.watch_pods(node, version):
                    if self.stopping.is_set():
                        return
                    kind, pod = event["type"], event["object"]
                    if kind in ("ADDED", "MODIFIED"):
                        self.events.put(("pod", pod_key(pod), pod))
                    elif kind == "DELETED":
                        self.events.put(("gone", pod_key(pod), pod))
                    elif kind == "ERROR":
                        break  # 410 Gone and friends: relist
            except (ApiError, OSError, ValueError) as error:
                log.warning("watching pods of %s: %s; relisting", node, error)
                if self.stopping.wait(1.0):
                    return

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until :meth:`stop`; then stop every pod process and mark the nodes NotReady."""
        self.register()
        threading.Thread(target=self._heartbeats, name="heartbeats", daemon=True).start()
        for node in self.nodes:
            threading.Thread(target=self._watch, args=(node.name,), daemon=True).start()
        while True:
            kind, key, payload = self.events.get()
            if kind == "stop":
                break
            try:
                self._handle(kind, key, payload)
            except ApiError as error:
                log.warning("%s %s: %s", kind, key, error)
        self._shutdown()

    def stop(self) -> None:
        self.stopping.set()
        self.events.put(("stop", "", None))

    def _handle(self, kind: str, key: str, payload: Any) -> None:
        run = self.runs.get(key)
        if kind == "pod":
            self._on_pod(key, payload)
        elif kind == "gone":
            if run is not None:
                self._kill(run)
                self._forget(key)
        elif run is None:
            return
        elif kind == "exited":
            generation, returncode = payload
            if generation == run.generation:
                self._on_exit(key, run, returncode)
        elif kind == "kill" and run.alive:
            log.warning("%s outlived its grace period: SIGKILL", key)
            self._kill(run)
        elif kind == "restart" and not run.deleting and not run.alive:
            self._start(run)
        elif kind == "ready" and payload[0] == run.generation and payload[1] != run.ready:
            run.ready = payload[1]
            self.api.patch_pod_status(
                run.namespace, run.name, readiness_status(run.ready, now=self.clock())
            )

    def _on_pod(self, key: str, pod: dict[str, Any]) -> None:
        run = self.runs.get(key)
        phase = (pod.get("status") or {}).get("phase")
        deleting = pod["metadata"].get("deletionTimestamp") is not None
        if run is None:
            if deleting or phase in ("Succeeded", "Failed"):
                if deleting:
                    self.api.delete_pod_now(pod["metadata"]["namespace"], pod["metadata"]["name"],
                                            pod["metadata"]["uid"])  # fmt: skip
                return
            run = self.runs[key] = PodRun(pod=pod)
            self._start(run)
            return
        run.pod = pod
        if deleting and not run.deleting:
            run.deleting = True
            self._terminate(run, pod["metadata"].get("deletionGracePeriodSeconds") or 0)

    # -- processes -------------------------------------------------------------------------

    def _start(self, run: PodRun) -> None:
        try:
            run.spec = process_spec(run.pod, self.host, self.ports)
        except CannotRun as error:
            log.error("%s/%s cannot run: %s", run.namespace, run.name, error)
            self._finish(run, CANNOT_RUN_EXIT_CODE, message=str(error))
            return
        for directory in run.spec.directories:
            directory.mkdir(parents=True, exist_ok=True)
        run.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        run.spec.termination_log.write_bytes(b"")  # a fresh file per container start
        if run.generation == 0:
            ports = {str(port): host for port, host in run.spec.ports.items()}
            self.api.annotate_pod(run.namespace, run.name, {PORTS_ANNOTATION: json.dumps(ports)})
        try:
            with run.spec.log_path.open("ab") as log_file:
                run.process = subprocess.Popen(
                    run.spec.argv,
                    env=run.spec.env,
                    cwd=run.spec.cwd,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a container: its processes are one group
                )
        except OSError as error:  # no such executable, not executable
            log.error("%s/%s cannot start: %s", run.namespace, run.name, error)
            self._finish(run, CANNOT_RUN_EXIT_CODE, message=str(error))
            return
        run.generation += 1
        run.started = self.clock()
        probe = run.pod["spec"]["containers"][0].get("readinessProbe")
        run.ready = probe is None
        run.probe_stop.set()
        run.probe_stop = threading.Event()
        self.api.patch_pod_status(
            run.namespace,
            run.name,
            running_status(run.pod, started=run.started, ready=run.ready, restarts=run.restarts),
        )
        log.info("%s/%s started: pid %d, %s", run.namespace, run.name, run.process.pid,
                 " ".join(run.spec.argv))  # fmt: skip
        key, generation, process = pod_key(run.pod), run.generation, run.process
        threading.Thread(
            target=lambda: self.events.put(("exited", key, (generation, process.wait()))),
            daemon=True,
        ).start()
        if probe is not None:
            threading.Thread(
                target=self._probe, args=(key, generation, probe, run.spec, run.probe_stop),
                daemon=True,
            ).start()  # fmt: skip

    def _probe(
        self,
        key: str,
        generation: int,
        probe: dict[str, Any],
        spec: ProcessSpec,
        stop: threading.Event,
    ) -> None:
        http = probe.get("httpGet")
        if http is None:
            self.events.put(("ready", key, (generation, True)))  # only httpGet is probed
            return
        port = int(http["port"])
        url = f"http://127.0.0.1:{spec.ports.get(port, port)}{http.get('path', '/')}"
        period = float(probe.get("periodSeconds", 10))
        if stop.wait(float(probe.get("initialDelaySeconds", 0))):
            return
        while True:
            try:
                with urllib.request.urlopen(url, timeout=float(probe.get("timeoutSeconds", 1))):
                    ready = True
            except (urllib.error.URLError, OSError):
                ready = False
            self.events.put(("ready", key, (generation, ready)))
            if stop.wait(period):
                return

    def _on_exit(self, key: str, run: PodRun, returncode: int) -> None:
        run.probe_stop.set()
        self._kill_group(run)  # PID 1 is gone: so is the rest of the container
        code = exit_code_of(returncode)
        log.info("%s/%s exited with %d", run.namespace, run.name, code)
        policy = run.pod["spec"].get("restartPolicy", "Always")
        restart = policy == "Always" or (policy == "OnFailure" and code != 0)
        if restart and not run.deleting:
            run.restarts += 1
            delay = min(2.0 ** min(run.restarts - 1, 4), MAX_RESTART_BACKOFF_SECONDS)
            self._after(run, delay, ("restart", key, None))
            return
        spec = run.spec
        message = ""
        if spec is not None:
            message = termination_message(
                message_file=spec.termination_log,
                log_path=spec.log_path,
                exit_code=code,
                policy=spec.message_policy,
            )
        self._finish(run, code, message=message)

    def _finish(self, run: PodRun, code: int, *, message: str = "") -> None:
        run.finished = True
        self.api.patch_pod_status(
            run.namespace,
            run.name,
            terminated_status(
                run.pod,
                exit_code=code,
                started=run.started,
                finished=self.clock(),
                restarts=run.restarts,
                message=message,
            ),
        )
        if run.deleting:
            self.api.delete_pod_now(run.namespace, run.name, run.uid)
            self._forget(pod_key(run.pod))

    def _terminate(self, run: PodRun, grace_seconds: int) -> None:
        """Graceful deletion: SIGTERM to PID 1, SIGKILL to the group after the grace period."""
        if not run.alive:
            self.api.delete_pod_now(run.namespace, run.name, run.uid)
            self._forget(pod_key(run.pod))
            return
        assert run.process is not None
        log.info("%s/%s: SIGTERM, %ds grace", run.namespace, run.name, grace_seconds)
        with contextlib.suppress(ProcessLookupError):
            run.process.send_signal(signal.SIGTERM)
        self._after(run, float(grace_seconds), ("kill", pod_key(run.pod), None))

    def _after(self, run: PodRun, delay: float, event: Event) -> None:
        timer = threading.Timer(delay, self.events.put, args=(event,))
        timer.daemon = True
        run.timers.append(timer)
        timer.start()

    def _kill_group(self, run: PodRun) -> None:
        if run.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(run.process.pid, signal.SIGKILL)

    def _kill(self, run: PodRun) -> None:
        self._kill_group(run)
        if run.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.process.wait(10)

    def _forget(self, key: str) -> None:
        run = self.runs.pop(key, None)
        if run is not None:
            run.probe_stop.set()
            for timer in run.timers:
                timer.cancel()

    def _shutdown(self) -> None:
        alive = [run for run in self.runs.values() if run.alive]
        for run in alive:
            assert run.process is not None
            with contextlib.suppress(ProcessLookupError):
                run.process.send_signal(signal.SIGTERM)
        for run in alive:
            assert run.process is not None
            try:
                run.process.wait(SHUTDOWN_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("%s/%s ignored SIGTERM: SIGKILL", run.namespace, run.name)
            self._kill(run)
        for key in list(self.runs):
            self._forget(key)
        for node in self.nodes:
            with contextlib.suppress(ApiError):
                self._heartbeat(node, ready=False)
        log.info("stopped")


def state_dir_default() -> Path:
    return Path(os.environ.get("GPUPOOL_CACHE", Path.home() / ".cache" / "gpupool")) / "processnode"
