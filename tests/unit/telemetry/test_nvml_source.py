from __future__ import annotations

import logging

import pytest

from gpupool.scheduling.model import NodeName
from gpupool.telemetry.model import GPUTelemetry, TelemetryUnavailable
from gpupool.telemetry.nvml_fake import (
    NVML_ERROR_DRIVER_NOT_LOADED,
    NVML_ERROR_FUNCTION_NOT_FOUND,
    NVML_ERROR_GPU_IS_LOST,
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_NOT_SUPPORTED,
    NVML_ERROR_UNKNOWN,
    XID,
    FakeGpu,
    FakeNvml,
    hgx_gpus,
)
from gpupool.telemetry.nvml_source import NVMLSource

NODE = NodeName("gpu-node-1")


def start(fake: FakeNvml) -> NVMLSource:
    return NVMLSource.start(node=NODE, nvml=fake.module())


def read_gpus(source: NVMLSource, now: float = 100.0) -> tuple[GPUTelemetry, ...]:
    (report,) = source.read(now=now)
    assert report.node == NODE
    assert report.timestamp == now
    return report.gpus


def test_reads_every_field_in_units() -> None:
    fake = FakeNvml(hgx_gpus(2))
    fake.gpus[1].used_mib = 40000
    fake.gpus[1].utilization = 97
    fake.gpus[1].temperature = 71
    fake.gpus[1].power_mw = 612_500
    fake.gpus[1].throttle = 0x4
    source = start(fake)
    gpu = read_gpus(source)[1]
    assert gpu == GPUTelemetry(
        index=1,
        uuid=gpu.uuid,
        model="NVIDIA H100 80GB HBM3",
        memory_total_mib=81559,
        memory_used_mib=40000,
        memory_free_mib=41559,
        sm_utilization_pct=97.0,
        temperature_c=71.0,
        power_w=612.5,
        clocks_throttle_reasons=0x4,
        ecc_volatile_corrected=0,
        ecc_volatile_uncorrected=0,
        nvlink_peers=(0,),
        nvlink_domain=0,
    )
    assert gpu.uuid == "GPU-fake-1"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (NVML_ERROR_LIBRARY_NOT_FOUND, "NVML library not found: NVML Shared Library Not Found"),
        (NVML_ERROR_DRIVER_NOT_LOADED, "NVIDIA driver not loaded"),
        (NVML_ERROR_UNKNOWN, "NVML initialisation failed"),
    ],
)
def test_start_fails_once_with_a_clear_reason(code: int, message: str) -> None:
    with pytest.raises(TelemetryUnavailable) as failure:
        start(FakeNvml(hgx_gpus(1), init_error=code))
    assert str(failure.value).startswith(message)


def test_no_gpus_is_unavailable() -> None:
    with pytest.raises(TelemetryUnavailable, match="no GPUs"):
        start(FakeNvml([]))


def test_xid_arrives_through_events_once_and_stays_in_history() -> None:
    fake = FakeNvml(hgx_gpus(4))
    source = start(fake)
    read_gpus(source, 1.0)
    fake.emit_xid(3, 79)
    fake.emit_xid(3, 13)
    gpus = read_gpus(source, 2.0)
    assert gpus[3].xid_events == (79, 13)
    assert gpus[3].xid_history == (13, 79)
    assert [g.xid_events for g in gpus[:3]] == [(), (), ()]
    later = read_gpus(source, 3.0)[3]
    assert later.xid_events == ()
    assert later.xid_history == (13, 79)


def test_reads_never_block_and_drain_the_event_set() -> None:
    fake = FakeNvml(hgx_gpus(2))
    source = start(fake)
    for _ in range(3):
        fake.emit_xid(0, 31)
    read_gpus(source)
    assert not fake.events
    # 3 events + the timeout that says the set is empty
    assert fake.calls["nvmlEventSetWait_v2"] == 4


def test_ecc_counters_are_read_on_events_not_polled() -> None:
    fake = FakeNvml(hgx_gpus(2))
    source = start(fake)
    for tick in range(5):
        read_gpus(source, float(tick))
    # two counters per GPU, once at the first read
    assert fake.calls["nvmlDeviceGetTotalEccErrors"] == 4
    fake.emit_ecc(1, uncorrected=2)
    gpus = read_gpus(source, 9.0)
    assert gpus[1].ecc_volatile_uncorrected == 2
    assert gpus[0].ecc_volatile_uncorrected == 0
    assert fake.calls["nvmlDeviceGetTotalEccErrors"] == 6


def test_ecc_is_polled_where_events_are_unsupported() -> None:
    gpus = hgx_gpus(1)
    gpus[0].supported_events = XID
    fake = FakeNvml(gpus)
    source = start(fake)
    read_gpus(source, 1.0)
    fake.gpus[0].ecc_uncorrected = 1  # no event: only polling can see it
    assert read_gpus(source, 2.0)[0].ecc_volatile_uncorrected == 1


def test_lost_gpu_is_reported_lost_and_not_read_again() -> None:
    fake = FakeNvml(hgx_gpus(2))
    source = start(fake)
    read_gpus(source, 1.0)
    fake.emit_xid(1, 79)
    fake.gpus[1].lost = True
    gpus = read_gpus(source, 2.0)
    assert gpus[1].lost is True
    assert gpus[1].xid_events == (79,)
    assert gpus[1].uuid == "GPU-fake-1"
    assert gpus[1].memory_free_mib is None
    assert gpus[1].temperature_c is None
    assert gpus[0].lost is False
    calls_before = fake.calls["nvmlDeviceGetMemoryInfo"]
    fake.gpus[1].lost = False  # NVML never brings a lost GPU back without a driver reload
    gpus = read_gpus(source, 3.0)
    assert gpus[1].lost is True
    assert fake.calls["nvmlDeviceGetMemoryInfo"] == calls_before + 1  # only GPU 0


def test_gpu_lost_already_at_start_is_kept_as_lost() -> None:
    gpus = hgx_gpus(2)
    gpus[0].failing["nvmlDeviceGetHandleByIndex"] = NVML_ERROR_GPU_IS_LOST
    source = start(FakeNvml(gpus))
    first, second = read_gpus(source)
    assert (first.index, first.lost, second.lost) == (0, True, False)


@pytest.mark.parametrize("code", [NVML_ERROR_FUNCTION_NOT_FOUND, NVML_ERROR_NOT_SUPPORTED])
def test_missing_function_leaves_field_none_and_is_not_called_again(code: int) -> None:
    gpus = hgx_gpus(1)
    gpus[0].failing["nvmlDeviceGetPowerUsage"] = code
    fake = FakeNvml(gpus)
    source = start(fake)
    for tick in range(3):
        gpu = read_gpus(source, float(tick))[0]
        assert gpu.power_w is None
        assert gpu.temperature_c == 60.0
    assert fake.calls["nvmlDeviceGetPowerUsage"] == 1


def test_old_driver_falls_back_to_throttle_reasons_name() -> None:
    gpus = hgx_gpus(1)
    gpus[0].failing["nvmlDeviceGetCurrentClocksEventReasons"] = NVML_ERROR_FUNCTION_NOT_FOUND
    gpus[0].throttle = 0x8
    fake = FakeNvml(gpus)
    source = start(fake)
    assert read_gpus(source, 1.0)[0].clocks_throttle_reasons == 0x8
    assert read_gpus(source, 2.0)[0].clocks_throttle_reasons == 0x8
    assert fake.calls["nvmlDeviceGetCurrentClocksEventReasons"] == 1


def test_function_absent_from_old_bindings_leaves_field_none() -> None:
    fake = FakeNvml(hgx_gpus(1))
    module = fake.module()
    del module.nvmlDeviceGetCurrentClocksEventReasons
    del module.nvmlDeviceGetCurrentClocksThrottleReasons
    source = NVMLSource.start(node=NODE, nvml=module)
    assert read_gpus(source)[0].clocks_throttle_reasons is None


def test_transient_error_is_none_for_one_read_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gpus = hgx_gpus(1)
    gpus[0].failing["nvmlDeviceGetTemperature"] = NVML_ERROR_UNKNOWN
    fake = FakeNvml(gpus)
    source = start(fake)
    with caplog.at_level(logging.WARNING):
        assert read_gpus(source, 1.0)[0].temperature_c is None
        assert read_gpus(source, 2.0)[0].temperature_c is None
    assert len([r for r in caplog.records if "nvmlDeviceGetTemperature" in r.message]) == 1
    del fake.gpus[0].failing["nvmlDeviceGetTemperature"]
    assert read_gpus(source, 3.0)[0].temperature_c == 60.0


def test_no_event_support_still_reads_and_polls_ecc() -> None:
    fake = FakeNvml(hgx_gpus(1))
    module = fake.module()
    del module.nvmlEventSetCreate
    source = NVMLSource.start(node=NODE, nvml=module)
    fake.gpus[0].ecc_uncorrected = 4
    assert read_gpus(source)[0].ecc_volatile_uncorrected == 4


def test_nvlink_pairs_make_separate_domains() -> None:
    gpus = [FakeGpu(uuid=f"GPU-{i}", bus_id=f"00000000:{0x20 + i:02X}:00.0") for i in range(4)]
    # 0<->1 and 2<->3, remote ends reported with a 4-digit PCI domain
    gpus[0].links = {0: "0000:21:00.0"}
    gpus[1].links = {0: "0000:20:00.0"}
    gpus[2].links = {3: "0000:23:00.0"}
    gpus[3].links = {}
    source = start(FakeNvml(gpus))
    result = read_gpus(source)
    assert [g.nvlink_peers for g in result] == [(1,), (0,), (3,), (2,)]
    assert [g.nvlink_domain for g in result] == [0, 0, 2, 2]


def test_pcie_only_gpus_have_no_domain() -> None:
    source = start(FakeNvml(hgx_gpus(2, nvswitch=False)))
    assert [(g.nvlink_peers, g.nvlink_domain) for g in read_gpus(source)] == [
        ((), None),
        ((), None),
    ]


def test_close_frees_event_set_and_shuts_down() -> None:
    fake = FakeNvml(hgx_gpus(1))
    start(fake).close()
    assert (fake.freed, fake.shut_down) == (True, True)
