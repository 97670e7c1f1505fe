"""System metrics of a running job, sampled about once a second in the job process.

A daemon thread reports, as metric series with the whole seconds since sampling began as
their step: ``system/cpu_percent`` (the machine's CPU use, 0–100), ``system/memory_mb``
(the job process's resident memory) and, where NVML answers (``nvidia-ml-py``, a node
with an NVIDIA driver), ``system/gpu<i>/utilization`` (%) and ``system/gpu<i>/memory_mb``
for each GPU the process may see. No driver, no GPU series.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import psutil

INTERVAL = 1.0


def _gpu_handles() -> list:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except pynvml.NVMLError:
        return []


def sample(ctx, step: int, process: psutil.Process, gpus: list) -> None:
    """One sample of every series, reported at ``step``."""
    ctx.metric("system/cpu_percent", psutil.cpu_percent(interval=None), step=step)
    ctx.metric("system/memory_mb", process.memory_info().rss / 2**20, step=step)
    if not gpus:
        return
    import pynvml

    for index, handle in enumerate(gpus):
        try:
            rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        except pynvml.NVMLError:
            continue
        ctx.metric(f"system/gpu{index}/utilization", rates.gpu, step=step)
        ctx.metric(f"system/gpu{index}/memory_mb", memory.used / 2**20, step=step)


@contextlib.contextmanager
def sampling(ctx, interval: float = INTERVAL) -> Iterator[None]:
    """Sample system metrics every ``interval`` seconds while the block runs."""
    stop = threading.Event()
    process, gpus = psutil.Process(), _gpu_handles()
    psutil.cpu_percent(interval=None)  # the first call only starts the measurement
    started = time.monotonic()

    def loop() -> None:
        while not stop.wait(interval):
            sample(ctx, round(time.monotonic() - started), process, gpus)

    thread = threading.Thread(target=loop, name="system-metrics", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval * 2)
