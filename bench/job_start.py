"""Benchmark: how long a job process takes to start working, exec'd vs forked.

    python bench/job_start.py [--jobs 10]

Runs ``--jobs`` TensorFlow worker checks (``worker.check``, ``use_tensorflow``: the job
imports TensorFlow and runs one matrix product) each way ``apps.jobs.launcher`` starts a
job process — ``exec`` (a new interpreter per job) and ``fork`` (from a fork server that
imported ``DIGITS_JOB_PRELOAD`` once) — one after the other, unconfined (the sandbox is
the same either way), and measures from the start request to the job's first metric
(its first step done) and the process's CPU time (``os.wait4``). The fork server's own
start (its preload, paid once per worker process) is printed apart. No database or store
is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, print_exec_fork, setup_django_for_jobs  # noqa: E402


def run_one(launch, workdir: Path) -> tuple[float, float]:
    """Seconds to the first metric and CPU seconds of one worker check."""
    from apps.jobs import sandbox

    spec = {
        "job_id": 1, "kind": "worker.check", "attempt": 1, "staging_prefix": "jobs/1/staging/",
        "params": {"queue": "default", "steps": 2, "step_seconds": 0.0, "matrix_size": 64,
                   "use_tensorflow": True, "fail_at_step": 2},
        "sandbox": {"mode": "none", "workdir": str(workdir)},
    }  # fmt: skip
    started = time.monotonic()
    proc, events_fd = launch(sandbox.environment(workdir, ""), str(workdir))
    proc.stdin.write(json.dumps(spec).encode())
    proc.stdin.close()
    first_metric = None
    with os.fdopen(events_fd, "rb") as events:
        for line in events:
            if first_metric is None and json.loads(line)["type"] == "metric":
                first_metric = time.monotonic() - started
    proc.stdout.read()
    proc.stderr.read()
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert first_metric is not None, "the check reported no step"
    return first_metric, proc.rusage.ru_utime + proc.rusage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    args = parser.parse_args()
    tmp = setup_django_for_jobs("bench-job-start-")
    from django.conf import settings

    from apps.jobs import launcher

    settings.DIGITS_JOB_LAUNCHER = "exec"
    results = {"exec": [run_one(launcher.start, tmp) for _ in range(args.jobs)]}
    server = launcher.spawn_server()
    first = run_one(server.start, tmp)[0]  # waits for the preload
    results["fork"] = [run_one(server.start, tmp) for _ in range(args.jobs)]
    server.close()
    preload = first - percentile([r[0] for r in results["fork"]], 50)

    print(f"{args.jobs} TensorFlow worker checks each way; seconds to the first step done")
    print_exec_fork(results)
    print(f"fork server preload (once per worker process): {preload:.2f} s")


if __name__ == "__main__":
    main()
