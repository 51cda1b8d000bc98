"""The NVML :class:`~gpupool.telemetry.model.TelemetrySource` (nvidia-ml-py, ``pynvml``).

Cost per read is kept low by doing once what can be done once:

* NVML is initialised once; device handles, UUIDs, names and the NVLink table
  are read at start (the topology does not change while the driver is loaded).
* XID errors and ECC errors arrive through one NVML event set; each read drains
  it with ``nvmlEventSetWait_v2(set, 0)`` (no waiting) instead of polling ECC
  counters per GPU. The ECC counters are re-read only for a GPU that had an ECC
  event (or every read on a GPU whose driver cannot deliver ECC events).
* A function the driver lacks (``FunctionNotFound``) or the device does not
  support (``NotSupported``) is remembered per GPU and never called again; its
  field stays ``None``.

``GPU is lost`` marks the GPU ``lost`` for good (until the agent restarts with
the driver). A missing library or driver raises :class:`TelemetryUnavailable`
once, at :meth:`NVMLSource.start`, with a one-line reason.

``pynvml`` is imported here and nowhere else, lazily; tests inject a module
object shaped like it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpupool.scheduling.model import NodeName
from gpupool.telemetry.model import (
    GPUTelemetry,
    GpuUuid,
    NodeTelemetry,
    TelemetryUnavailable,
)
from gpupool.telemetry.nvlink import normalize_pci_bus_id, nvlink_topology

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_MAX_EVENTS_PER_READ = 1024
_NOT_AVAILABLE_UINT = 0xFFFFFFFF

_THROTTLE_FUNCTIONS = (
    "nvmlDeviceGetCurrentClocksEventReasons",  # name since driver 535
    "nvmlDeviceGetCurrentClocksThrottleReasons",  # older drivers
)


class _GpuLost(Exception):
    """Internal: NVML said ``GPU is lost`` while reading one device."""


@dataclass(slots=True)
class _Device:
    """Mutable per-GPU bookkeeping of the adapter (never leaves this module)."""

    index: int
    handle: Any
    uuid: GpuUuid
    model: str
    lost: bool = False
    unsupported: set[str] = field(default_factory=set)
    pending_xids: list[int] = field(default_factory=list)
    xid_history: set[int] = field(default_factory=set)
    ecc_from_events: bool = False
    ecc_dirty: bool = True
    ecc_corrected: int | None = None
    ecc_uncorrected: int | None = None
    nvlink_peers: tuple[int, ...] = ()
    nvlink_domain: int | None = None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def import_pynvml() -> Any:
    """The real ``pynvml`` module; :class:`TelemetryUnavailable` if not installed."""
    try:
        return importlib.import_module("pynvml")
    except ImportError as error:
        raise TelemetryUnavailable(f"nvidia-ml-py (pynvml) is not installed: {error}") from None


class NVMLSource:
    """Telemetry of the GPUs of the node this process runs on."""

    def __init__(self, *, node: NodeName, nvml: Any, devices: list[_Device], event_set: Any):
        self._node = node
        self._nvml = nvml
        self._devices = devices
        self._by_uuid = {device.uuid: device for device in devices}
        self._event_set = event_set
        self._wait_event: Callable[[Any, int], Any] | None = getattr(
            nvml, "nvmlEventSetWait_v2", None
        ) or getattr(nvml, "nvmlEventSetWait", None)
        self._logged: set[tuple[int, str, int]] = set()

    # ---------------------------------------------------------------- start

    @classmethod
    def start(cls, *, node: NodeName, nvml: Any | None = None) -> NVMLSource:
        """Initialise NVML, read static facts and subscribe to XID/ECC events.

        ``nvml`` is the ``pynvml`` module (injected by tests); by default it is
        imported here. Raises :class:`TelemetryUnavailable` with one clear line
        when the library, the driver or any GPU is missing.
        """
        module = import_pynvml() if nvml is None else nvml
        try:
            module.nvmlInit()
        except module.NVMLError as error:
            raise TelemetryUnavailable(_init_failure(module, error)) from None
        try:
            count = int(module.nvmlDeviceGetCount())
        except module.NVMLError as error:
            raise TelemetryUnavailable(f"NVML cannot count GPUs: {error}") from None
        if count == 0:
            raise TelemetryUnavailable("NVML sees no GPUs on this node")
        devices = [_open_device(module, index) for index in range(count)]
        _read_topology(module, devices)
        event_set = _subscribe(module, devices)
        return cls(node=node, nvml=module, devices=devices, event_set=event_set)

    # ----------------------------------------------------------------- read

    def read(self, *, now: float) -> Sequence[NodeTelemetry]:
        self._drain_events()
        gpus = tuple(self._read_device(device) for device in self._devices)
        return (NodeTelemetry(node=self._node, timestamp=now, gpus=gpus, source="nvml"),)

    def close(self) -> None:
        nvml = self._nvml
        if self._event_set is not None:
            try:
                nvml.nvmlEventSetFree(self._event_set)
            except nvml.NVMLError as error:
                log.debug("nvmlEventSetFree failed: %s", error)
            self._event_set = None
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError as error:
            log.debug("nvmlShutdown failed: %s", error)

    # ------------------------------------------------------------- internals

    def _drain_events(self) -> None:
        if self._event_set is None or self._wait_event is None:
            return
        nvml = self._nvml
        for _ in range(_MAX_EVENTS_PER_READ):
            try:
                event = self._wait_event(self._event_set, 0)
            except nvml.NVMLError as error:
                if error.value != nvml.NVML_ERROR_TIMEOUT:  # timeout = drained
                    self._log_once(-1, "nvmlEventSetWait_v2", error)
                return
            device = self._device_of_event(event.device)
            if device is None:
                continue
            event_type = int(event.eventType)
            if event_type & nvml.nvmlEventTypeXidCriticalError:
                xid = int(event.eventData)
                device.pending_xids.append(xid)
                device.xid_history.add(xid)
            if event_type & _ecc_event_types(nvml):
                device.ecc_dirty = True

    def _device_of_event(self, handle: Any) -> _Device | None:
        for device in self._devices:
            if device.handle is handle:
                return device
        try:
            uuid = GpuUuid(_text(self._nvml.nvmlDeviceGetUUID(handle)))
        except self._nvml.NVMLError as error:
            self._log_once(-1, "nvmlDeviceGetUUID(event)", error)
            return None
        return self._by_uuid.get(uuid)

    def _read_device(self, device: _Device) -> GPUTelemetry:
        xids = tuple(device.pending_xids)
        device.pending_xids.clear()
        if not device.lost:
            try:
                return self._read_live(device, xids)
            except _GpuLost:
                device.lost = True
                log.warning("GPU %d (%s) is lost", device.index, device.uuid)
        return GPUTelemetry(
            index=device.index,
            uuid=device.uuid,
            model=device.model,
            xid_events=xids,
            xid_history=tuple(sorted(device.xid_history)),
            nvlink_peers=device.nvlink_peers,
            nvlink_domain=device.nvlink_domain,
            lost=True,
        )

    def _read_live(self, device: _Device, xids: tuple[int, ...]) -> GPUTelemetry:
        nvml = self._nvml
        handle = device.handle
        memory = self._call(device, "nvmlDeviceGetMemoryInfo", handle)
        utilization = self._call(device, "nvmlDeviceGetUtilizationRates", handle)
        temperature = self._call(
            device, "nvmlDeviceGetTemperature", handle, nvml.NVML_TEMPERATURE_GPU
        )
        power_mw = self._call(device, "nvmlDeviceGetPowerUsage", handle)
        throttle = self._call_first(device, _THROTTLE_FUNCTIONS, handle)
        if device.ecc_dirty or not device.ecc_from_events:
            self._read_ecc(device)
        return GPUTelemetry(
            index=device.index,
            uuid=device.uuid,
            model=device.model,
            memory_total_mib=None if memory is None else int(memory.total) // MIB,
            memory_used_mib=None if memory is None else int(memory.used) // MIB,
            memory_free_mib=None if memory is None else int(memory.free) // MIB,
            sm_utilization_pct=None if utilization is None else float(utilization.gpu),
            temperature_c=_available(temperature),
            power_w=None if _available(power_mw) is None else float(power_mw) / 1000.0,
            clocks_throttle_reasons=None if throttle is None else int(throttle),
            ecc_volatile_corrected=device.ecc_corrected,
            ecc_volatile_uncorrected=device.ecc_uncorrected,
            xid_events=xids,
            xid_history=tuple(sorted(device.xid_history)),
            nvlink_peers=device.nvlink_peers,
            nvlink_domain=device.nvlink_domain,
        )

    def _read_ecc(self, device: _Device) -> None:
        nvml = self._nvml
        corrected = self._call(
            device,
            "nvmlDeviceGetTotalEccErrors",
            device.handle,
            nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED,
            nvml.NVML_VOLATILE_ECC,
        )
        uncorrected = self._call(
            device,
            "nvmlDeviceGetTotalEccErrors",
            device.handle,
            nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            nvml.NVML_VOLATILE_ECC,
        )
        device.ecc_corrected = None if corrected is None else int(corrected)
        device.ecc_uncorrected = None if uncorrected is None else int(uncorrected)
        device.ecc_dirty = False

    def _call_first(self, device: _Device, names: Sequence[str], *args: Any) -> Any:
        """The first of ``names`` the driver has (newer name first)."""
        for name in names:
            if name in device.unsupported:
                continue
            value = self._call(device, name, *args)
            if value is not None or name not in device.unsupported:
                return value
        return None

    def _call(self, device: _Device, name: str, *args: Any) -> Any:
        """Call one NVML function for one GPU; ``None`` when it cannot answer.

        Not supported / not found: remembered, never called again for this GPU.
        GPU is lost: raises :class:`_GpuLost`. Any other NVML error: ``None``
        for this read, logged once per GPU, function and error code.
        """
        if name in device.unsupported:
            return None
        nvml = self._nvml
        function: Callable[..., Any] | None = getattr(nvml, name, None)
        if function is None:
            device.unsupported.add(name)
            return None
        try:
            return function(*args)
        except nvml.NVMLError as error:
            if error.value in _lost_codes(nvml):
                raise _GpuLost from None
            if error.value in _unsupported_codes(nvml):
                device.unsupported.add(name)
                return None
            self._log_once(device.index, name, error)
            return None

    def _log_once(self, index: int, name: str, error: Any) -> None:
        key = (index, name, int(getattr(error, "value", -1)))
        if key not in self._logged:
            self._logged.add(key)
            log.warning("NVML %s failed for GPU %d: %s", name, index, error)


def _available(value: Any) -> float | None:
    if value is None or int(value) == _NOT_AVAILABLE_UINT:
        return None
    return float(value)


def _ecc_event_types(nvml: Any) -> int:
    return int(nvml.nvmlEventTypeSingleBitEccError | nvml.nvmlEventTypeDoubleBitEccError)


def _lost_codes(nvml: Any) -> frozenset[int]:
    return frozenset(
        getattr(nvml, name)
        for name in ("NVML_ERROR_GPU_IS_LOST", "NVML_ERROR_RESET_REQUIRED")
        if hasattr(nvml, name)
    )


def _unsupported_codes(nvml: Any) -> frozenset[int]:
    return frozenset(
        getattr(nvml, name)
        for name in ("NVML_ERROR_NOT_SUPPORTED", "NVML_ERROR_FUNCTION_NOT_FOUND")
        if hasattr(nvml, name)
    )


def _init_failure(nvml: Any, error: Any) -> str:
    code = getattr(error, "value", None)
    if code == getattr(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", None):
        return (
            f"NVML library not found: {error} (is the NVIDIA driver installed and"
            " libnvidia-ml.so.1 on the library path?)"
        )
    if code == getattr(nvml, "NVML_ERROR_DRIVER_NOT_LOADED", None):
        return f"NVIDIA driver not loaded: {error}"
    if code == getattr(nvml, "NVML_ERROR_NO_PERMISSION", None):
        return f"no permission to use NVML: {error}"
    return f"NVML initialisation failed: {error}"


def _open_device(nvml: Any, index: int) -> _Device:
    """Handle, UUID and name of one GPU; a GPU lost already at start is kept, lost."""
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = GpuUuid(_text(nvml.nvmlDeviceGetUUID(handle)))
        model = _text(nvml.nvmlDeviceGetName(handle))
    except nvml.NVMLError as error:
        log.warning("GPU %d cannot be opened: %s", index, error)
        return _Device(
            index=index, handle=None, uuid=GpuUuid(f"unknown-{index}"), model="unknown", lost=True
        )
    return _Device(index=index, handle=handle, uuid=uuid, model=model)


def _subscribe(nvml: Any, devices: list[_Device]) -> Any:
    """One event set for XID and ECC events of all GPUs; ``None`` if unsupported."""
    wanted = (
        nvml.nvmlEventTypeXidCriticalError
        | nvml.nvmlEventTypeSingleBitEccError
        | nvml.nvmlEventTypeDoubleBitEccError
    )
    ecc_types = _ecc_event_types(nvml)
    try:
        event_set = nvml.nvmlEventSetCreate()
    except (nvml.NVMLError, AttributeError) as error:
        log.warning("NVML events unavailable (%s): XID errors will not be seen", error)
        return None
    for device in devices:
        if device.lost:
            continue
        try:
            supported = int(nvml.nvmlDeviceGetSupportedEventTypes(device.handle))
            mask = supported & wanted
            if mask:
                nvml.nvmlDeviceRegisterEvents(device.handle, mask, event_set)
        except (nvml.NVMLError, AttributeError) as error:
            log.warning("GPU %d: cannot register XID/ECC events: %s", device.index, error)
            continue
        if not mask & nvml.nvmlEventTypeXidCriticalError:
            log.warning("GPU %d does not report XID events", device.index)
        device.ecc_from_events = mask & ecc_types == ecc_types
    return event_set


def _read_topology(nvml: Any, devices: list[_Device]) -> None:
    """Fill each device's NVLink peers and domain from its active links."""
    bus_ids: dict[str, int] = {}
    live = [device for device in devices if not device.lost]
    for device in live:
        try:
            bus_ids[normalize_pci_bus_id(nvml.nvmlDeviceGetPciInfo(device.handle).busId)] = (
                device.index
            )
        except nvml.NVMLError as error:
            log.info("GPU %d: no PCI info (%s); NVLink peers unknown", device.index, error)
    direct: dict[int, set[int]] = {}
    switched: set[int] = set()
    max_links = int(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18))
    for device in live:
        direct[device.index] = set()
        for link in range(max_links):
            try:
                if nvml.nvmlDeviceGetNvLinkState(device.handle, link) != nvml.NVML_FEATURE_ENABLED:
                    continue
                remote = normalize_pci_bus_id(
                    nvml.nvmlDeviceGetNvLinkRemotePciInfo(device.handle, link).busId
                )
            except nvml.NVMLError:
                # NotSupported (no NVLink), InvalidArgument (past the last link)...
                continue
            if remote in bus_ids:
                direct[device.index].add(bus_ids[remote])
            elif _is_switch(nvml, device.handle, link):
                switched.add(device.index)
    topology = nvlink_topology(
        gpu_indices={device.index for device in devices},
        direct_links=direct,
        switch_attached=switched,
    )
    for device in devices:
        device.nvlink_peers = topology.peers.get(device.index, ())
        device.nvlink_domain = topology.domains.get(device.index)


def _is_switch(nvml: Any, handle: Any, link: int) -> bool:
    try:
        kind = nvml.nvmlDeviceGetNvLinkRemoteDeviceType(handle, link)
    except (nvml.NVMLError, AttributeError):
        return False
    return bool(kind == nvml.NVML_NVLINK_DEVICE_TYPE_SWITCH)
