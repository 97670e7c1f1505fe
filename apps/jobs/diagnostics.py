"""The worker check: a job kind that tells whether a node can run jobs, and how fast.

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
from rest_framework import serializers

from apps.jobs.kinds import QUEUES, JobKind, register


class WorkerCheckParams(serializers.Serializer):
    queue = serializers.ChoiceField(choices=QUEUES, default="default")
    steps = serializers.IntegerField(min_value=1, max_value=100_000, default=20)
    step_seconds = serializers.FloatField(min_value=0.0, max_value=60.0, default=0.5)
    matrix_size = serializers.IntegerField(min_value=8, max_value=8192, default=256)
    use_tensorflow = serializers.BooleanField(default=False)
    fail_at_step = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None,
        help_text="Raise an error at this step (to see how failures are reported).",
    )  # fmt: skip


@register
class WorkerCheck(JobKind):
    name = "worker.check"
    title = "Worker check"
    params_serializer = WorkerCheckParams
    user_creatable = True

    def queue_for(self, params):
        return params.get("queue", "default")

    def _devices(self, ctx) -> tuple[list[dict], object | None]:
        if not ctx.params["use_tensorflow"]:
            return [{"name": "cpu:numpy", "type": "CPU"}], None
        import tensorflow as tf

        devices = [
            {"name": d.name, "type": d.device_type} for d in tf.config.list_logical_devices()
        ]
        return devices, tf

    def run(self, ctx):
        params = ctx.params
        vm = psutil.virtual_memory()
        ctx.log(
            f"Python {platform.python_version()} on {platform.node()}, "
            f"{os.cpu_count()} CPUs, {vm.total / 2**30:.1f} GiB memory"
        )
        devices, tf = self._devices(ctx)
        ctx.log("Devices: " + ", ".join(f"{d['name']} ({d['type']})" for d in devices))
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
            "matrix_size": n,
            "steps": steps,
            "gflops_mean": float(np.mean(throughput)),
            "gflops_max": float(np.max(throughput)),
            "checksum": float(np.asarray(product).sum()),
        }
        ctx.store.put(ctx.artifact_key("report.json"), json.dumps(report, indent=2).encode())
        ctx.log(f"Mean throughput {report['gflops_mean']:.2f} GFLOP/s")
        return report
