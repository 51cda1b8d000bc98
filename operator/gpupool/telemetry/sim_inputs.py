"""Keeps a :class:`SimulatedSource` in step with the cluster and the fault file.

Simulated mode only: every ``nodes_refresh_s`` the kwok nodes are listed (nodes
come and go), every ``pods_refresh_s`` the running gpupool pods (their GPU
assignments drive memory and utilization), and on every tick the fault file is
re-read if it changed (one ``stat`` per tick; a file that fails to parse is
logged once and retried when it changes again).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gpupool.k8s.errors import ApiError
from gpupool.telemetry.faults import FaultScriptError, load_fault_script
from gpupool.telemetry.publish import ClusterReader
from gpupool.telemetry.sim_load import loads_from_pods, lookup_in
from gpupool.telemetry.sim_nodes import simulated_nodes_from
from gpupool.telemetry.sim_source import SimulatedSource

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedInputSettings:
    nodes_selector: str = "type=kwok"
    pods_selector: str = "gpupool.io/role"
    faults_path: Path | None = None
    nodes_refresh_s: float = 30.0
    pods_refresh_s: float = 5.0


class SimulatedInputs:
    def __init__(
        self,
        *,
        source: SimulatedSource,
        cluster: ClusterReader,
        settings: SimulatedInputSettings,
    ) -> None:
        self._source = source
        self._cluster = cluster
        self._settings = settings
        self._nodes_at: float | None = None
        self._pods_at: float | None = None
        self._fault_file_signature: tuple[int, int] | None = None
        self._broken_signature: tuple[int, int] | None = None

    def refresh(self, *, now: float) -> None:
        """Bring nodes, loads and faults up to date if due (API errors are logged)."""
        settings = self._settings
        try:
            if self._nodes_at is None or now - self._nodes_at >= settings.nodes_refresh_s:
                self._refresh_nodes()
                self._nodes_at = now
            if self._pods_at is None or now - self._pods_at >= settings.pods_refresh_s:
                self._refresh_loads()
                self._pods_at = now
        except ApiError as error:
            log.warning("cannot list the cluster for the simulation: %s", error)
        if settings.faults_path is not None:
            self._refresh_faults(settings.faults_path)

    def _refresh_nodes(self) -> None:
        nodes = simulated_nodes_from(
            self._cluster.list_nodes(label_selector=self._settings.nodes_selector)
        )
        if [n.name for n in nodes] != [n.name for n in self._source.nodes]:
            log.info("simulating %d GPU nodes (%s)", len(nodes), self._settings.nodes_selector)
        self._source.set_nodes(nodes)

    def _refresh_loads(self) -> None:
        pods = self._cluster.list_running_pods(label_selector=self._settings.pods_selector)
        totals = {node.name: node.memory_total_mib for node in self._source.nodes}
        self._source.set_loads(lookup_in(loads_from_pods(pods, memory_total_mib=totals)))

    def _refresh_faults(self, path: Path) -> None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return
        signature = (stat.st_mtime_ns, stat.st_size)
        if signature in (self._fault_file_signature, self._broken_signature):
            return
        try:
            script = load_fault_script(path)
        except FaultScriptError as error:
            self._broken_signature = signature
            log.error("fault file %s: %s (keeping the previous script)", path, error)
            return
        self._fault_file_signature = signature
        self._source.set_faults(script)
        log.info("fault script %s: %d faults", path, len(script.faults))
