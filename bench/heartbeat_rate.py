"""Benchmark: the database writes a running job costs, old heartbeat defaults vs new.

    python scripts/with_test_services.py python bench/heartbeat_rate.py [--seconds 20] [--jobs 4]

On a database of its own (``digits_bench_heartbeat``), for each setting (old:
heartbeat 5 s, stale 60 s, reaper 15 s; new: 2 s, 10 s, 2 s) starts a real job worker
(``manage.py jobworker --threads N``) and the reaper, runs ``--jobs`` ``worker.check``
jobs of ``--seconds`` each at once, and reads PostgreSQL's statistics
(``pg_stat_user_tables``): row updates of ``jobs_job`` (heartbeats, flushes of
progress/sequence numbers, status changes) and reaper queries per second per running
job. The heartbeat's own share is (updates/s with the setting) minus (the same jobs'
other updates), so the report also prints the heartbeat writes alone: one per interval
per running job. Last, the cost of one heartbeat UPDATE (p50/p95 over 2000) gives the
running jobs one connection could keep alive at the new interval.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, recreate_database, require_postgres, setup_django  # noqa: E402

SETTINGS = {
    "old": {"DIGITS_JOB_HEARTBEAT_SECONDS": "5", "DIGITS_JOB_STALE_SECONDS": "60",
            "DIGITS_REAPER_INTERVAL": "15"},
    "new": {"DIGITS_JOB_HEARTBEAT_SECONDS": "2", "DIGITS_JOB_STALE_SECONDS": "10",
            "DIGITS_REAPER_INTERVAL": "2"},
}  # fmt: skip


def stats() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT n_tup_upd, seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
            "WHERE relname = 'jobs_job'"
        )
        updates, scans = cursor.fetchone()
    return {"updates": updates, "scans": scans}


def run(name: str, env: dict, jobs: int, seconds: float) -> dict:
    from django.contrib.auth import get_user_model

    from apps.jobs import services
    from apps.jobs.models import Job

    user, _ = get_user_model().objects.get_or_create(username="bench")
    child_env = {**os.environ, **env}
    procs = [
        subprocess.Popen([sys.executable, "manage.py", "jobworker", "--threads", str(jobs)],
                         env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "manage.py", "reaper"], env=child_env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]  # fmt: skip
    try:
        time.sleep(5)  # the worker connects; the bench is no test
        steps = int(seconds / 0.5)
        params = {"queue": "default", "steps": steps, "step_seconds": 0.5, "matrix_size": 32,
                  "use_tensorflow": False, "fail_at_step": None}  # fmt: skip
        ids = [services.submit(owner=user, kind="worker.check", params=params).pk
               for _ in range(jobs)]  # fmt: skip
        while Job.objects.filter(pk__in=ids, status="running").count() < jobs:
            time.sleep(0.1)
        time.sleep(1.5)  # statistics reach the collector within a second
        before, started = stats(), time.monotonic()
        time.sleep(seconds * 0.6)  # a window where all jobs run
        time.sleep(1.5)
        after, elapsed = stats(), time.monotonic() - started - 1.5
        while Job.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists():
            time.sleep(0.2)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    per_job = (after["updates"] - before["updates"]) / elapsed / jobs
    return {
        "name": name,
        "updates_per_s_per_job": per_job,
        "heartbeats_per_s_per_job": 1 / float(env["DIGITS_JOB_HEARTBEAT_SECONDS"]),
        "reaper_scans_per_s": (after["scans"] - before["scans"]) / elapsed,
    }


def heartbeat_cost(n: int = 2000) -> list[float]:
    from django.utils import timezone

    from apps.jobs.models import Job

    job = Job.objects.order_by("-pk").first()
    Job.objects.filter(pk=job.pk).update(status="running", worker="bench")
    times = []
    for _ in range(n):
        t = time.perf_counter()
        Job.objects.filter(pk=job.pk, status="running", worker="bench").update(
            heartbeat_at=timezone.now()
        )
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    url = recreate_database(require_postgres(), "digits_bench_heartbeat")
    setup_django(url)
    results = [run(name, env, args.jobs, args.seconds) for name, env in SETTINGS.items()]
    for r in results:
        print(
            f"{r['name']}: {r['updates_per_s_per_job']:.2f} job-row writes/s per running job "
            f"(heartbeats {r['heartbeats_per_s_per_job']:.2f}/s); all readers: "
            f"{r['reaper_scans_per_s']:.2f} scans/s of jobs_job (abort polls, reaper, outbox)"
        )
    old, new = results
    print(
        f"ratio new/old: all job-row writes {new['updates_per_s_per_job'] / old['updates_per_s_per_job']:.2f}x, "
        f"heartbeats {new['heartbeats_per_s_per_job'] / old['heartbeats_per_s_per_job']:.1f}x"
    )
    cost = heartbeat_cost()
    p50, p95 = percentile(cost, 50), percentile(cost, 95)
    print(
        f"one heartbeat UPDATE: p50 {p50 * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms; one connection "
        f"keeps ~{int(1 / p50 * 2)} running jobs alive at a 2 s interval"
    )


if __name__ == "__main__":
    main()
