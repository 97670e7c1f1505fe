"""Benchmark: CPU a job worker, a web process and ``manage.py check`` take to start.

    python scripts/with_test_services.py python bench/process_start.py [--rounds 5]
    ... python bench/process_start.py --baseline /tmp/old-checkout   # against other code

Starts each process as the test suite does and measures its CPU time (user + system, its
own and that of the children it waited for, ``psutil``) when it is ready: ``manage.py jobworker --skip-checks`` when it prints "Worker
consuming" (jobs exec'd: no fork server is started), uvicorn serving
``digits_site.asgi:application`` once it has answered ``/healthz/live``, and a whole
``manage.py check`` (``os.wait4``). The floor, an interpreter that only runs
``django.setup()``, is measured in the same run. With ``--baseline`` the same processes of
another checkout (its root, plugins and client first on ``PYTHONPATH``) are started in
turn with this one's, so both see the same load; the best of ``--rounds`` is printed.
Needs PostgreSQL and Redis (a throw-away database is created).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, recreate_database, require_postgres  # noqa: E402

BROKER = "redis://127.0.0.1:6379/15"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def code_env(root: Path, base: dict[str, str]) -> dict[str, str]:
    """``base`` with the code of checkout ``root`` first on ``PYTHONPATH``."""
    paths = [root, *sorted((root / "plugins").iterdir()), root / "client"]
    return {**base, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


def cpu(proc) -> float:
    """CPU seconds of ``proc`` and of the children it has waited for (a worker's probes)."""
    import psutil

    times = psutil.Process(proc.pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def worker(root: Path, env: dict[str, str]) -> float:
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "jobworker", "--queues", "default", "--skip-checks"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for line in proc.stdout:
            if b"Worker consuming" in line:
                return cpu(proc)
        raise RuntimeError(f"the worker of {root} exited before consuming")
    finally:
        stop(proc)
        proc.stdout.close()


def web(root: Path, env: dict[str, str]) -> float:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "digits_site.asgi:application", "--host",
         "127.0.0.1", "--port", str(port), "--no-access-log"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz/live", timeout=5)
                return cpu(proc)
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the web process of {root} did not answer")
    finally:
        stop(proc)


def whole(args: list[str], root: Path, env: dict[str, str]) -> float:
    proc = subprocess.Popen([sys.executable, *args], cwd=root, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{args} of {root} failed")
    return usage.ru_utime + usage.ru_stime


MEASURES = {
    "django.setup() only": lambda root, env: whole(
        ["-c", "import django; django.setup()"], root, env
    ),
    "jobworker to consuming": worker,
    "web to /healthz/live": web,
    "manage.py check": lambda root, env: whole(["manage.py", "check"], root, env),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    database = recreate_database(require_postgres(), "digits_bench_process_start")
    base = {
        **os.environ, "DATABASE_URL": database, "DIGITS_BROKER_URL": BROKER,
        "DJANGO_SETTINGS_MODULE": "digits_site.settings", "DIGITS_JOB_LAUNCHER": "exec",
        "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    base.pop("PYTHONDONTWRITEBYTECODE", None)  # as the test suite's processes: cached bytecode
    checkouts = {"this": ROOT}
    if args.baseline:
        checkouts = {"baseline": args.baseline.resolve(), **checkouts}
    envs = {name: code_env(root, base) for name, root in checkouts.items()}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=envs["this"], check=True
    )
    results = {(name, what): [] for name in checkouts for what in MEASURES}
    for _ in range(args.rounds + 1):  # the first round writes the bytecode caches
        for what, measure in MEASURES.items():
            for name, root in checkouts.items():
                results[name, what].append(measure(root, envs[name]))
    print(f"CPU seconds (user + system) to start, best of {args.rounds}")
    print(f"{'process':24}" + "".join(f"{name:>10}" for name in checkouts))
    for what in MEASURES:
        best = [min(results[name, what][1:]) for name in checkouts]
        print(f"{what:24}" + "".join(f"{b:10.2f}" for b in best))


if __name__ == "__main__":
    main()
