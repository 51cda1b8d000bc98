"""A module object shaped like ``pynvml`` (the part gpupool uses), for tests and the benchmark.

It is our boundary: the NVML adapter receives the module it talks to. The fake
keeps per-GPU state that tests change (temperature, a lost GPU, a function the
driver lacks) and an event queue fed by :meth:`FakeNvml.emit_xid` /
:meth:`FakeNvml.emit_ecc`. It counts calls per function so tests can check what
is (not) polled.
"""

from __future__ import annotations

import types
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_UNKNOWN = 999

_MESSAGES = {
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_TIMEOUT: "Timeout",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}

XID = 0x8
SBE = 0x1
DBE = 0x2
SWITCH = "switch"
MIB = 1024 * 1024


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML Error with code {self.value}")


@dataclass
class FakeGpu:
    """One device's state; tests mutate it between reads."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    total_mib: int = 81559
    used_mib: int = 1024
    utilization: int = 50
    temperature: int = 60
    power_mw: int = 350_000
    throttle: int = 0
    ecc_corrected: int = 0
    ecc_uncorrected: int = 0
    bus_id: str = "00000000:00:00.0"
    links: dict[int, str] = field(default_factory=dict)
    """Active NVLink index -> remote PCI bus id, or ``SWITCH``."""
    supported_events: int = XID | SBE | DBE
    lost: bool = False
    failing: dict[str, int] = field(default_factory=dict)
    """Function name -> NVML error code it raises for this GPU."""


@dataclass
class FakeEvent:
    device: Any
    eventType: int
    eventData: int


class FakeNvml:
    """State behind the fake module; :meth:`module` builds the module object."""

    def __init__(self, gpus: list[FakeGpu], *, init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.calls: Counter[str] = Counter()
        self.events: deque[FakeEvent] = deque()
        self.registered: dict[int, int] = {}
        self.event_set_created = False
        self.freed = False
        self.shut_down = False
        self.handles = [types.SimpleNamespace(index=i) for i in range(len(gpus))]

    # ------------------------------------------------------------ test hooks

    def emit_xid(self, index: int, xid: int) -> None:
        if self.registered.get(index, 0) & XID:
            self.events.append(FakeEvent(self.handles[index], XID, xid))

    def emit_ecc(self, index: int, *, uncorrected: int = 0, corrected: int = 0) -> None:
        gpu = self.gpus[index]
        gpu.ecc_uncorrected += uncorrected
        gpu.ecc_corrected += corrected
        kind = (DBE if uncorrected else 0) | (SBE if corrected else 0)
        if self.registered.get(index, 0) & kind:
            self.events.append(FakeEvent(self.handles[index], kind, 0))

    def module(self) -> types.ModuleType:
        module = types.ModuleType("pynvml")
        for name, value in globals().items():
            if name.startswith("NVML_"):
                setattr(module, name, value)
        module.NVMLError = NVMLError  # type: ignore[attr-defined]
        constants = {
            "NVML_TEMPERATURE_GPU": 0,
            "NVML_MEMORY_ERROR_TYPE_CORRECTED": 0,
            "NVML_MEMORY_ERROR_TYPE_UNCORRECTED": 1,
            "NVML_VOLATILE_ECC": 0,
            "NVML_FEATURE_ENABLED": 1,
            "NVML_NVLINK_MAX_LINKS": 6,
            "NVML_NVLINK_DEVICE_TYPE_GPU": 0,
            "NVML_NVLINK_DEVICE_TYPE_SWITCH": 2,
            "nvmlEventTypeSingleBitEccError": SBE,
            "nvmlEventTypeDoubleBitEccError": DBE,
            "nvmlEventTypeXidCriticalError": XID,
        }
        for name, value in constants.items():
            setattr(module, name, value)
        for name in dir(self):
            if name.startswith("nvml"):
                setattr(module, name, self._counted(name, getattr(self, name)))
        return module

    # ------------------------------------------------------------ internals

    def _counted(self, name: str, function: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            self.calls[name] += 1
            return function(*args)

        return wrapper

    def _gpu(self, handle: Any, function: str) -> FakeGpu:
        gpu: FakeGpu = self.gpus[handle.index]
        if gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if function in gpu.failing:
            raise NVMLError(gpu.failing[function])
        return gpu

    # ------------------------------------------------------- pynvml surface

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shut_down = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        self._gpu(self.handles[index], "nvmlDeviceGetHandleByIndex")
        return self.handles[index]

    def nvmlDeviceGetUUID(self, handle: Any) -> bytes:
        return self._gpu(handle, "nvmlDeviceGetUUID").uuid.encode()

    def nvmlDeviceGetName(self, handle: Any) -> str:
        return self._gpu(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        return types.SimpleNamespace(
            total=gpu.total_mib * MIB,
            used=gpu.used_mib * MIB,
            free=(gpu.total_mib - gpu.used_mib) * MIB,
        )

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        return types.SimpleNamespace(gpu=gpu.utilization, memory=0)

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int:
        assert sensor == 0
        return self._gpu(handle, "nvmlDeviceGetTemperature").temperature

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        return self._gpu(handle, "nvmlDeviceGetPowerUsage").power_mw

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any) -> int:
        return self._gpu(handle, "nvmlDeviceGetCurrentClocksEventReasons").throttle

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: Any) -> int:
        return self._gpu(handle, "nvmlDeviceGetCurrentClocksThrottleReasons").throttle

    def nvmlDeviceGetTotalEccErrors(self, handle: Any, error_type: int, counter_type: int) -> int:
        assert counter_type == 0
        gpu = self._gpu(handle, "nvmlDeviceGetTotalEccErrors")
        return gpu.ecc_uncorrected if error_type == 1 else gpu.ecc_corrected

    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetPciInfo")
        return types.SimpleNamespace(busId=gpu.bus_id.encode())

    def nvmlDeviceGetNvLinkState(self, handle: Any, link: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetNvLinkState")
        if not gpu.links:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return 1 if link in gpu.links else 0

    def nvmlDeviceGetNvLinkRemotePciInfo(self, handle: Any, link: int) -> Any:
        remote = self._gpu(handle, "nvmlDeviceGetNvLinkRemotePciInfo").links[link]
        bus = "00000000:ff:00.0" if remote == SWITCH else remote
        return types.SimpleNamespace(busId=bus.encode())

    def nvmlDeviceGetNvLinkRemoteDeviceType(self, handle: Any, link: int) -> int:
        remote = self._gpu(handle, "nvmlDeviceGetNvLinkRemoteDeviceType").links[link]
        return 2 if remote == SWITCH else 0

    def nvmlEventSetCreate(self) -> str:
        self.event_set_created = True
        return "event-set"

    def nvmlDeviceGetSupportedEventTypes(self, handle: Any) -> int:
        return self._gpu(handle, "nvmlDeviceGetSupportedEventTypes").supported_events

    def nvmlDeviceRegisterEvents(self, handle: Any, event_types: int, event_set: str) -> None:
        assert event_set == "event-set"
        self._gpu(handle, "nvmlDeviceRegisterEvents")
        self.registered[handle.index] = event_types

    def nvmlEventSetWait_v2(self, event_set: str, timeout_ms: int) -> FakeEvent:
        assert (event_set, timeout_ms) == ("event-set", 0), "reads must never block"
        if not self.events:
            raise NVMLError(NVML_ERROR_TIMEOUT)
        return self.events.popleft()

    def nvmlEventSetFree(self, event_set: str) -> None:
        self.freed = True


def hgx_gpus(count: int = 8, *, nvswitch: bool = True) -> list[FakeGpu]:
    """``count`` GPUs; with ``nvswitch`` all reach each other through a switch."""
    return [
        FakeGpu(
            uuid=f"GPU-fake-{i}",
            bus_id=f"00000000:{0x10 + i:02X}:00.0",
            links={0: SWITCH, 1: SWITCH} if nvswitch else {},
        )
        for i in range(count)
    ]
