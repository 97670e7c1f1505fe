"""System metrics sampled while a job runs: CPU and memory everywhere, per-GPU series
where NVML answers, none where it does not."""

from __future__ import annotations

import sys
import threading
import types

from apps.jobs import sysmetrics
from tests.conftest import wait_until


class Recorder:
    def __init__(self):
        self.points: list[tuple[str, float, int]] = []

    def metric(self, series, value, step=None):
        self.points.append((series, value, step))


def test_cpu_and_memory_are_sampled_while_the_block_runs(monkeypatch):
    monkeypatch.setattr(sysmetrics, "_gpu_handles", lambda: [])
    ctx = Recorder()
    with sysmetrics.sampling(ctx, interval=0.05):
        wait_until(lambda: len(ctx.points) >= 6, timeout=10, interval=0.02)
    # The sampler stopped with the block.
    assert not any(t.name == "system-metrics" for t in threading.enumerate())
    names = {name for name, _, _ in ctx.points}
    assert names == {"system/cpu_percent", "system/memory_mb"}
    memory = [value for name, value, _ in ctx.points if name == "system/memory_mb"]
    assert all(10 < mb < 100_000 for mb in memory), memory
    cpu = [value for name, value, _ in ctx.points if name == "system/cpu_percent"]
    assert all(0 <= pct <= 100 for pct in cpu), cpu


def test_each_gpu_gets_its_utilisation_and_memory(monkeypatch):
    """NVML's answers (a stand-in module: this machine has no NVIDIA driver) become
    ``system/gpu<i>/...`` series, one pair per device."""
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = type("NVMLError", (Exception,), {})
    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetCount = lambda: 2
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=40 + h)
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=(h + 1) * 2**30)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    ctx = Recorder()
    sysmetrics.sample(ctx, 7, __import__("psutil").Process(), sysmetrics._gpu_handles())
    got = {name: (value, step) for name, value, step in ctx.points}
    assert got["system/gpu0/utilization"] == (40, 7) and got["system/gpu1/utilization"] == (41, 7)
    assert got["system/gpu1/memory_mb"] == (2048, 7)


def test_no_driver_no_gpu_series(monkeypatch):
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = type("NVMLError", (Exception,), {})

    def no_driver():
        raise nvml.NVMLError("NVML Shared Library Not Found")

    nvml.nvmlInit = no_driver
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert sysmetrics._gpu_handles() == []
