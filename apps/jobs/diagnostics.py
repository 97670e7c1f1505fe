"""The worker check's work (job kind ``worker.check``): can a node run jobs, how fast?

It reports the node's Python, CPU, memory and (optionally) TensorFlow devices,
then runs timed matrix multiplications, streaming the throughput as a metric.
It is the first job a team runs on a new GPU node, and the job the engine's own
tests use.
"""

from __future__ import annotations

import json
import os
import platform
import time

import numpy as np
import psutil


def _devices(ctx) -> tuple[list[dict], object | None]:
    if not ctx.params["use_tensorflow"]:
        return [{"name": "cpu:numpy", "type": "CPU"}], None
    import tensorflow as tf

    devices = [{"name": d.name, "type": d.device_type} for d in tf.config.list_logical_devices()]
    return devices, tf


def check(ctx) -> dict:
    """Report the node, then time ``steps`` matrix products; the summary is the result."""
    params = ctx.params
    vm = psutil.virtual_memory()
    ctx.log(
        f"Python {platform.python_version()} on {platform.node()}, "
        f"{os.cpu_count()} CPUs, {vm.total / 2**30:.1f} GiB memory"
    )
    devices, tf = _devices(ctx)
    ctx.log("Devices: " + ", ".join(f"{d['name']} ({d['type']})" for d in devices))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ctx.log(f"CUDA_VISIBLE_DEVICES={visible}" if visible is not None else "All GPUs visible")
    n, steps = params["matrix_size"], params["steps"]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    if tf is not None:
        a = tf.constant(a)
    throughput = []
    for step in range(1, steps + 1):
        ctx.check_abort()
        if params.get("fail_at_step") == step:
            raise RuntimeError(f"failing at step {step} as asked (fail_at_step)")
        started = time.perf_counter()
        product = tf.linalg.matmul(a, a).numpy() if tf is not None else a @ a
        elapsed = max(time.perf_counter() - started, 1e-9)
        gflops = 2 * n**3 / elapsed / 1e9
        throughput.append(gflops)
        ctx.metric("gflops", gflops, step=step)
        ctx.metric("cpu_percent", psutil.cpu_percent(interval=None), step=step)
        ctx.progress(step / steps, text=f"Step {step} of {steps}")
        time.sleep(max(params["step_seconds"] - elapsed, 0.0))
    report = {
        "devices": devices,
        "cuda_visible_devices": visible,
        "matrix_size": n,
        "steps": steps,
        "gflops_mean": float(np.mean(throughput)),
        "gflops_max": float(np.max(throughput)),
        "checksum": float(np.asarray(product).sum()),
    }
    ctx.store.put(ctx.artifact_key("report.json"), json.dumps(report, indent=2).encode())
    ctx.log(f"Mean throughput {report['gflops_mean']:.2f} GFLOP/s")
    return report
