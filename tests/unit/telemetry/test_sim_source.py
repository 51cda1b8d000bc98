from __future__ import annotations

import pytest

from gpupool.scheduling.model import NodeName
from gpupool.telemetry.faults import Fault, FaultKind, FaultScript
from gpupool.telemetry.health import gpu_health
from gpupool.telemetry.model import GPUTelemetry
from gpupool.telemetry.sim_load import GPULoad, lookup_in
from gpupool.telemetry.sim_nodes import simulated_node
from gpupool.telemetry.sim_source import SimulatedSource

T0 = 1_700_000_000.0
A = NodeName("gpu-node-000")
B = NodeName("gpu-node-001")
NODES = (simulated_node(A, gpu_count=8), simulated_node(B, gpu_count=8))
BUSY = GPULoad(memory_mib=60000, utilization_pct=90.0)


def source(seed: int = 7, faults: tuple[Fault, ...] = ()) -> SimulatedSource:
    return SimulatedSource(
        nodes=NODES,
        seed=seed,
        started_at=T0,
        loads=lookup_in({(A, 0): BUSY, (A, 1): BUSY}),
        faults=FaultScript(faults),
    )


def gpu_at(src: SimulatedSource, node: NodeName, index: int, elapsed: float) -> GPUTelemetry:
    for report in src.read(now=T0 + elapsed):
        if report.node == node:
            found = report.gpu(index)
            assert found is not None
            return found
    raise AssertionError(f"no report for {node}")


def test_same_seed_same_telemetry_different_seed_different_noise() -> None:
    times = [T0 + t for t in range(0, 120, 7)]
    first = [source(seed=1).read(now=t) for t in times]
    again = [source(seed=1).read(now=t) for t in times]
    other = [source(seed=2).read(now=t) for t in times]
    assert first == again
    assert first != other


def test_reads_cover_every_node_and_gpu_with_stable_uuids() -> None:
    reports = source().read(now=T0)
    assert [(r.node, len(r.gpus), r.source, r.timestamp) for r in reports] == [
        (A, 8, "simulated", T0),
        (B, 8, "simulated", T0),
    ]
    uuids = {g.uuid for r in reports for g in r.gpus}
    assert len(uuids) == 16
    assert source(seed=99).read(now=T0 + 5)[0].gpus[0].uuid == reports[0].gpus[0].uuid


def test_memory_and_utilization_follow_the_bound_workloads() -> None:
    src = source()
    busy = gpu_at(src, A, 0, 10)
    idle = gpu_at(src, A, 2, 10)
    assert (busy.memory_used_mib, busy.memory_free_mib) == (60000, 81920 - 60000)
    assert busy.sm_utilization_pct is not None and 87.0 <= busy.sm_utilization_pct <= 93.0
    assert (idle.memory_used_mib, idle.sm_utilization_pct) == (0, 0.0)
    assert busy.temperature_c is not None and idle.temperature_c is not None
    assert busy.temperature_c > idle.temperature_c + 30
    assert busy.power_w is not None and idle.power_w is not None
    assert busy.power_w > idle.power_w * 3
    assert idle.clocks_throttle_reasons == 0x1
    src.set_loads(lookup_in({}))
    assert gpu_at(src, A, 0, 11).memory_used_mib == 0


def test_xid_fault_is_reported_once_at_its_time_and_kept_in_history() -> None:
    src = source(faults=(Fault(at_s=30, node=A, gpu=3, kind=FaultKind.XID, xid=79),))
    assert gpu_at(src, A, 3, 29).xid_events == ()
    hit = gpu_at(src, A, 3, 31)
    assert (hit.xid_events, hit.xid_history) == ((79,), (79,))
    assert gpu_health(hit).healthy is False
    after = gpu_at(src, A, 3, 32)
    assert (after.xid_events, after.xid_history) == ((), (79,))
    assert gpu_health(after).healthy is False  # sticky
    assert gpu_at(src, B, 3, 33).xid_history == ()


def test_reloading_the_script_does_not_repeat_a_reported_xid() -> None:
    fault = Fault(at_s=0, node=A, gpu=0, kind=FaultKind.XID, xid=48)
    src = source(faults=(fault,))
    assert gpu_at(src, A, 0, 1).xid_events == (48,)
    src.set_faults(FaultScript((fault,)))
    assert gpu_at(src, A, 0, 2).xid_events == ()
    src.add_fault(Fault(at_s=0, node=A, gpu=0, kind=FaultKind.XID, xid=31))
    assert gpu_at(src, A, 0, 3).xid_events == (31,)


def test_temperature_ramp_rises_to_target_and_crosses_the_threshold() -> None:
    ramp = Fault(at_s=100, node=A, gpu=2, kind=FaultKind.TEMPERATURE_RAMP, to_c=97, over_s=60)
    src = source(faults=(ramp,))
    before = gpu_at(src, A, 2, 99).temperature_c
    halfway = gpu_at(src, A, 2, 130).temperature_c
    done = gpu_at(src, A, 2, 200)
    assert before is not None and before < 35
    assert halfway is not None and 60 < halfway < 68
    assert done.temperature_c == pytest.approx(97.0)
    assert done.clocks_throttle_reasons is not None and done.clocks_throttle_reasons & 0x20
    assert gpu_health(done).reason == "temperature 97C > 90C"


def test_lost_gpu_vanishes_from_its_time_on() -> None:
    src = source(faults=(Fault(at_s=50, node=B, gpu=5, kind=FaultKind.LOST),))
    assert gpu_at(src, B, 5, 49).lost is False
    lost = gpu_at(src, B, 5, 50)
    assert lost.lost is True
    assert (lost.memory_free_mib, lost.temperature_c, lost.power_w) == (None, None, None)
    assert gpu_at(src, B, 5, 5000).lost is True
    assert gpu_at(src, B, 4, 5000).lost is False


def test_ecc_fault_adds_to_volatile_counters() -> None:
    src = source(
        faults=(
            Fault(at_s=10, node=A, gpu=1, kind=FaultKind.ECC, corrected=5),
            Fault(at_s=20, node=A, gpu=1, kind=FaultKind.ECC, uncorrected=1, corrected=2),
        )
    )
    early = gpu_at(src, A, 1, 15)
    late = gpu_at(src, A, 1, 25)
    assert (early.ecc_volatile_corrected, early.ecc_volatile_uncorrected) == (5, 0)
    assert (late.ecc_volatile_corrected, late.ecc_volatile_uncorrected) == (7, 1)
    assert gpu_health(early).healthy and not gpu_health(late).healthy


def test_nodes_can_change_between_reads() -> None:
    src = source()
    src.set_nodes((simulated_node("new", gpu_count=2),))
    assert [(r.node, len(r.gpus)) for r in src.read(now=T0)] == [("new", 2)]
