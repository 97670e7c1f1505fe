"""What GPUs this node has, and their figures: NVML where present, else a configured list.

``DIGITS_WORKER_GPUS``: ``auto`` (the default) asks NVML (package ``nvidia-ml-py``)
and finds no GPU where there is no driver; ``none`` means a CPU node; a list such as
``0,1,2,3`` names the devices (what goes into ``CUDA_VISIBLE_DEVICES``). A list is
also how the tests simulate a 4-GPU node on a CPU machine. Figures (utilisation,
memory) come from NVML for numbered devices when it is present, else stay empty.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass

from django.conf import settings

log = logging.getLogger(__name__)


@dataclass
class DeviceInfo:
    index: int
    ident: str
    name: str = ""
    memory_total_mb: int | None = None
    memory_used_mb: int | None = None
    utilization: int | None = None


@functools.cache
def _nvml():
    """The initialised ``pynvml`` module, or None without a driver (or the package)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        log.info("NVML not available (%s): no GPU figures", exc)
        return None
    return pynvml


def _measure(info: DeviceInfo) -> DeviceInfo:
    nvml = _nvml()
    if nvml is None or not info.ident.isdigit():
        return info
    with contextlib.suppress(nvml.NVMLError):
        handle = nvml.nvmlDeviceGetHandleByIndex(int(info.ident))
        name = nvml.nvmlDeviceGetName(handle)
        info.name = name.decode() if isinstance(name, bytes) else name
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        info.memory_total_mb = int(memory.total // 2**20)
        info.memory_used_mb = int(memory.used // 2**20)
        info.utilization = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    return info


def configured() -> list[str] | None:
    """The configured device list, or None when NVML decides (``auto``)."""
    raw = settings.DIGITS_WORKER_GPUS.strip()
    if raw.lower() == "auto":
        return None
    if raw.lower() in ("", "none"):
        return []
    return [item.strip() for item in raw.split(",") if item.strip()]


def discover() -> tuple[list[DeviceInfo], bool]:
    """This node's devices with their current figures, and whether NVML found them."""
    idents = configured()
    nvml = _nvml()
    from_nvml = False
    if idents is None:
        count = nvml.nvmlDeviceGetCount() if nvml is not None else 0
        idents = [str(i) for i in range(count)]
        from_nvml = nvml is not None
    devices = [_measure(DeviceInfo(index=i, ident=ident)) for i, ident in enumerate(idents)]
    for device in devices:
        device.name = device.name or f"GPU {device.ident}"
    return devices, from_nvml


def node_name() -> str:
    """This node's name: ``DIGITS_NODE_NAME``, else the host name (a pod's name)."""
    import socket

    return settings.DIGITS_NODE_NAME or socket.gethostname()
