"""Device check: the node's GPUs as the scheduler sees them, and job pinning, for real.

    python scripts/with_test_services.py python bench/gpu_check.py [--jobs 2] [--steps 20]

1. Devices: what this node advertises (``apps.cluster.devices.discover``) with NVML's
   figures (name, memory used/total, utilisation). Without NVML (no driver, or a CPU
   machine) it simulates a 4-GPU node (``DIGITS_WORKER_GPUS=0,1,2,3``) and says so.
2. Pinning: on a database of its own (``digits_bench_gpu_<pid>``, dropped after) it registers the node and
   submits ``--jobs`` worker checks, each asking for an equal share of the GPUs
   (at least one), then runs them from as many worker threads through the runner
   (``apps.jobs.runner.execute``: claim with reservation, a sandboxed job process with
   ``CUDA_VISIBLE_DEVICES`` set). With TensorFlow and a real GPU, each job lists the
   devices TensorFlow sees. It prints each job's devices and times; jobs that ran at
   the same time must have seen disjoint devices.

Exit status 1 when two overlapping jobs saw a device in common, a job failed, or a
reservation outlived its job.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import recreate_database, require_postgres, setup_django  # noqa: E402


def describe_devices() -> tuple[int, bool]:
    from apps.cluster import devices

    found, nvml = devices.discover()
    if not nvml and not devices.configured():
        print(
            "No NVML here (no NVIDIA driver): simulating a 4-GPU node, DIGITS_WORKER_GPUS=0,1,2,3"
        )
        os.environ["DIGITS_WORKER_GPUS"] = "0,1,2,3"
        from django.conf import settings

        settings.DIGITS_WORKER_GPUS = "0,1,2,3"
        found, nvml = devices.discover()
    source = "NVML" if nvml else "the configured list (DIGITS_WORKER_GPUS)"
    print(f"Node {devices.node_name()}: {len(found)} GPU(s) from {source}")
    for d in found:
        memory = (
            f"{d.memory_used_mb} / {d.memory_total_mb} MiB" if d.memory_total_mb else "memory ?"
        )
        util = f"{d.utilization} %" if d.utilization is not None else "utilisation ?"
        print(f"  gpu {d.ident}: {d.name}, {memory}, {util}")
    return len(found), nvml


def submit(jobs: int, gpus: int, steps: int, use_tf: bool) -> list:
    from django.contrib.auth import get_user_model

    from apps.jobs import services

    user, _ = get_user_model().objects.get_or_create(username="gpu-check")
    share = max(gpus // jobs, 1)
    params = {"queue": "gpu", "steps": steps, "step_seconds": 0.1, "matrix_size": 256,
              "use_tensorflow": use_tf, "gpus": {"mode": "count", "count": share, "ids": []}}  # fmt: skip
    from unittest import mock

    with mock.patch.object(services, "enqueue"):  # the threads below are the wake-ups
        return [
            services.submit(owner=user, kind="worker.check", params=params, name=f"check {i}")
            for i in range(jobs)
        ]


def report(jobs: list) -> int:
    from apps.cluster.models import Reservation
    from apps.jobs.models import Job

    rows = [Job.objects.get(pk=j.pk) for j in jobs]
    failures = 0
    for job in rows:
        if not (job.started_at and job.finished_at):
            print(f"job {job.pk}: {job.status} without running: {job.error or job.status_text}")
            failures += 1
            continue
        seen = job.result.get("cuda_visible_devices")
        tf = [d["name"] for d in job.result.get("devices", []) if d.get("type") == "GPU"]
        print(f"job {job.pk}: {job.status}, CUDA_VISIBLE_DEVICES={seen}"
              f"{', TensorFlow sees ' + ', '.join(tf) if tf else ''}; "
              f"ran {job.started_at:%H:%M:%S.%f} to {job.finished_at:%H:%M:%S.%f}")  # fmt: skip
        failures += job.status != "done"
    ran = [j for j in rows if j.status == "done"]
    for a in ran:
        for b in ran:
            if a.pk < b.pk and a.started_at < b.finished_at and b.started_at < a.finished_at:
                common = set(a.result["cuda_visible_devices"].split(",")) & set(
                    b.result["cuda_visible_devices"].split(",")
                ) - {""}
                verdict = f"SHARED {sorted(common)}" if common else "disjoint devices"
                print(f"jobs {a.pk} and {b.pk} overlapped in time: {verdict}")
                failures += bool(common)
    left = Reservation.objects.count()
    if left:
        print(f"{left} reservation(s) left after the jobs ended")
    return 1 if failures or left else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    os.environ["DIGITS_DATA_DIR"] = str(tmp / "var")
    for name in ("DIGITS_S3_ENDPOINT", "DIGITS_BROKER_URL"):
        os.environ.pop(name, None)
    server = require_postgres()
    database = f"digits_bench_gpu_{os.getpid()}"
    setup_django(recreate_database(server, database))
    try:
        return check(args)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(server, database)
        shutil.rmtree(tmp, ignore_errors=True)  # the data folder (the store's files)


def drop_database(server_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    admin_url = urlunsplit(urlsplit(server_url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def check(args) -> int:
    count, nvml = describe_devices()

    from apps.cluster import agent
    from apps.jobs import runner

    agent.report(["gpu"], args.jobs)
    use_tf = False
    if nvml:  # a real GPU: let each job list what TensorFlow sees
        try:
            import tensorflow  # noqa: F401

            use_tf = True
        except ImportError:
            pass
    jobs = submit(args.jobs, count, args.steps, use_tf)
    threads = [threading.Thread(target=runner.execute, args=(j.pk,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return report(jobs)


if __name__ == "__main__":
    sys.exit(main())
