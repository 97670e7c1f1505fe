"""Benchmark: how long a model process of the inference server takes to start, exec'd vs forked.

    python bench/inference_start.py [--starts 5]

Starts ``--starts`` model processes (``apps.inference.host.ModelProcess``: sandboxed as the
node's ``DIGITS_JOB_SANDBOX`` says, Django set up, TensorFlow imported, ready for its first
request) each way ``apps.jobs.launcher.start_process`` starts one — ``exec`` (a new
interpreter each) and ``fork`` (from a fork server that imported ``DIGITS_JOB_PRELOAD``
once) — and measures the wait until it is ready and the process's CPU time (``os.wait4``)
when it is stopped. The fork server's own start (its preload, paid once per inference
server) is printed apart. No database or store is needed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, print_exec_fork, setup_django_for_jobs  # noqa: E402


def run_one(slot: int) -> tuple[float, float]:
    """Seconds until the process is ready, and its CPU seconds."""
    from apps.inference.host import ModelProcess

    started = time.monotonic()
    process = ModelProcess("shared", slot)
    ready = time.monotonic() - started
    process.close()
    ru = process.proc.rusage
    return ready, ru.ru_utime + ru.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    setup_django_for_jobs("bench-inference-start-")
    from django.conf import settings

    from apps.jobs import launcher, sandbox

    settings.DIGITS_JOB_LAUNCHER = "exec"
    results = {"exec": [run_one(n) for n in range(args.starts)]}
    settings.DIGITS_JOB_LAUNCHER = "fork"
    first = run_one(args.starts)[0]  # waits for the preload
    results["fork"] = [run_one(args.starts + 1 + n) for n in range(args.starts)]
    launcher.server().close()
    preload = first - percentile([r[0] for r in results["fork"]], 50)

    print(f"{args.starts} model processes each way (sandbox: {sandbox.mode()}); seconds to ready")
    print_exec_fork(results)
    print(f"fork server preload (once per inference server): {preload:.2f} s")


if __name__ == "__main__":
    main()
