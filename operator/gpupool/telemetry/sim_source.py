"""The simulated :class:`~gpupool.telemetry.model.TelemetrySource` for kwok nodes.

Deterministic: every value is a function of the seed, the node, the GPU, the
whole second of ``now``, the workloads' expected load and the fault script,
so the same inputs give the same telemetry in any process. Only XID events are
stateful (each scripted XID is reported by exactly one read).

Model (per GPU):

* memory used = the bound workloads' expected memory (exact: packing by free
  memory must see what the operator placed), free = total - used;
* SM utilization = the workloads' expected utilization +-3 points of noise
  (0 when idle);
* temperature = 30C + 0.5C per utilization point +-1C; power = 15% of board
  power idle up to board power at 100%, +-2%;
* clocks throttle reasons: ``GpuIdle`` (0x1) when idle, ``SwThermalSlowdown``
  (0x20) from 87C;
* faults from a :class:`~gpupool.telemetry.faults.FaultScript`: XID events,
  temperature ramps, lost GPUs, ECC errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gpupool.telemetry.faults import Fault, FaultKind, FaultScript
from gpupool.telemetry.model import GPUTelemetry, GpuUuid, NodeTelemetry
from gpupool.telemetry.sim_load import GpuKey, LoadLookup, idle_everywhere
from gpupool.telemetry.sim_nodes import SimulatedNode

IDLE_TEMPERATURE_C = 30.0
TEMPERATURE_PER_UTIL_POINT_C = 0.5
IDLE_POWER_FRACTION = 0.15
THROTTLE_GPU_IDLE = 0x1
THROTTLE_SW_THERMAL = 0x20
THERMAL_SLOWDOWN_C = 87.0


def simulated_uuid(node: str, index: int) -> GpuUuid:
    """A stable UUID-shaped id per node and GPU index (independent of the seed)."""
    digest = hashlib.blake2b(f"{node}/{index}".encode(), digest_size=16).hexdigest()
    return GpuUuid(
        f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    )


def _noise(seed: int, node: str, index: int, second: int) -> tuple[float, float, float]:
    """Three values in [-1, 1], a pure function of the arguments."""
    raw = hashlib.blake2b(f"{seed}|{node}|{index}|{second}".encode(), digest_size=6).digest()
    return (
        int.from_bytes(raw[0:2]) / 32767.5 - 1.0,
        int.from_bytes(raw[2:4]) / 32767.5 - 1.0,
        int.from_bytes(raw[4:6]) / 32767.5 - 1.0,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _ActiveFaults:
    lost: bool
    new_xids: tuple[int, ...]
    ecc_corrected: int
    ecc_uncorrected: int
    ramps: tuple[Fault, ...]


class SimulatedSource:
    """Telemetry for many simulated nodes at once (one agent process for all kwok nodes)."""

    def __init__(
        self,
        *,
        nodes: Iterable[SimulatedNode],
        seed: int,
        started_at: float,
        loads: LoadLookup = idle_everywhere,
        faults: FaultScript | None = None,
    ) -> None:
        self._seed = seed
        self._started_at = started_at
        self._nodes: tuple[SimulatedNode, ...] = tuple(nodes)
        self._loads = loads
        self._by_gpu: dict[GpuKey, tuple[Fault, ...]] = {}
        self._fired: set[Fault] = set()
        self._history: dict[GpuKey, set[int]] = {}
        self.set_faults(faults or FaultScript())

    @property
    def nodes(self) -> tuple[SimulatedNode, ...]:
        return self._nodes

    def set_nodes(self, nodes: Iterable[SimulatedNode]) -> None:
        """Cover this set of nodes from the next read on (kwok nodes come and go)."""
        self._nodes = tuple(nodes)

    def set_loads(self, loads: LoadLookup) -> None:
        self._loads = loads

    def set_faults(self, script: FaultScript) -> None:
        """Replace the script; XIDs already reported are not reported again."""
        grouped: dict[GpuKey, list[Fault]] = {}
        for fault in script.faults:
            grouped.setdefault((fault.node, fault.gpu), []).append(fault)
        self._by_gpu = {
            key: tuple(sorted(set(faults), key=lambda f: (f.at_s, f.kind.value, f.xid)))
            for key, faults in grouped.items()
        }

    def add_fault(self, fault: Fault) -> None:
        """Add one fault (e.g. from a test), keeping the others."""
        key = (fault.node, fault.gpu)
        faults = {*self._by_gpu.get(key, ()), fault}
        self._by_gpu[key] = tuple(sorted(faults, key=lambda f: (f.at_s, f.kind.value, f.xid)))

    def read(self, *, now: float) -> Sequence[NodeTelemetry]:
        elapsed = now - self._started_at
        second = int(now)
        return tuple(
            NodeTelemetry(
                node=node.name,
                timestamp=now,
                gpus=tuple(
                    self._read_gpu(node, index, elapsed=elapsed, second=second)
                    for index in range(node.gpu_count)
                ),
                source="simulated",
            )
            for node in self._nodes
        )

    def close(self) -> None:
        """Nothing to release."""

    # ------------------------------------------------------------- internals

    def _read_gpu(
        self, node: SimulatedNode, index: int, *, elapsed: float, second: int
    ) -> GPUTelemetry:
        key = (node.name, index)
        active = self._active_faults(key, elapsed)
        if active.new_xids:
            self._history.setdefault(key, set()).update(active.new_xids)
        history = self._history.get(key)
        uuid = simulated_uuid(node.name, index)
        xid_history = tuple(sorted(history)) if history else ()
        peers = node.nvlink_peers(index)
        domain = node.nvlink_domain(index)
        if active.lost:
            return GPUTelemetry(
                index=index,
                uuid=uuid,
                model=node.model,
                xid_events=active.new_xids,
                xid_history=xid_history,
                nvlink_peers=peers,
                nvlink_domain=domain,
                lost=True,
            )

        load = self._loads(node.name, index)
        util_noise, temperature_noise, power_noise = _noise(self._seed, node.name, index, second)
        if load.utilization_pct > 0:
            utilization = min(100.0, max(0.0, load.utilization_pct + 3.0 * util_noise))
        else:
            utilization = 0.0
        temperature = IDLE_TEMPERATURE_C + TEMPERATURE_PER_UTIL_POINT_C * utilization
        temperature += temperature_noise
        for ramp in active.ramps:
            progress = 1.0 if ramp.over_s == 0 else min(1.0, (elapsed - ramp.at_s) / ramp.over_s)
            temperature = max(temperature, temperature + (ramp.to_c - temperature) * progress)
        idle_w = IDLE_POWER_FRACTION * node.board_power_w
        power = idle_w + (node.board_power_w - idle_w) * utilization / 100.0
        power *= 1.0 + 0.02 * power_noise
        throttle = (THROTTLE_GPU_IDLE if utilization == 0 else 0) | (
            THROTTLE_SW_THERMAL if temperature >= THERMAL_SLOWDOWN_C else 0
        )
        used = min(node.memory_total_mib, max(0, load.memory_mib))
        return GPUTelemetry(
            index=index,
            uuid=uuid,
            model=node.model,
            memory_total_mib=node.memory_total_mib,
            memory_used_mib=used,
            memory_free_mib=node.memory_total_mib - used,
            sm_utilization_pct=round(utilization, 1),
            temperature_c=round(temperature, 1),
            power_w=round(power, 1),
            clocks_throttle_reasons=throttle,
            ecc_volatile_corrected=active.ecc_corrected,
            ecc_volatile_uncorrected=active.ecc_uncorrected,
            xid_events=active.new_xids,
            xid_history=xid_history,
            nvlink_peers=peers,
            nvlink_domain=domain,
        )

    def _active_faults(self, key: GpuKey, elapsed: float) -> _ActiveFaults:
        faults = self._by_gpu.get(key)
        if not faults:
            return _NO_FAULTS
        lost = False
        new_xids: list[int] = []
        corrected = uncorrected = 0
        ramps: list[Fault] = []
        for fault in faults:
            if fault.at_s > elapsed:
                break  # sorted by time
            if fault.kind is FaultKind.LOST:
                lost = True
            elif fault.kind is FaultKind.XID and fault not in self._fired:
                self._fired.add(fault)
                new_xids.append(fault.xid)
            elif fault.kind is FaultKind.ECC:
                corrected += fault.corrected
                uncorrected += fault.uncorrected
            elif fault.kind is FaultKind.TEMPERATURE_RAMP:
                ramps.append(fault)
        return _ActiveFaults(
            lost=lost,
            new_xids=tuple(new_xids),
            ecc_corrected=corrected,
            ecc_uncorrected=uncorrected,
            ramps=tuple(ramps),
        )


_NO_FAULTS = _ActiveFaults(lost=False, new_xids=(), ecc_corrected=0, ecc_uncorrected=0, ramps=())
