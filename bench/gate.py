"""What the job sandbox costs: artifact traffic through the worker's gate, and confinement.

Two measurements, each against a baseline taken in the same run:

1. Artifact throughput: a job writes shards to its staging folder and reads objects back,
   as a dataset build and a training job do. Baseline: the same calls on the store itself
   (what a job did before the sandbox). Gate: the same calls on a ``GateStore`` served by
   an ``ArtifactGate`` in this process (the worker's side), on the same local store.
2. Start-up: a Python process that confines itself (``apps.jobs.confine.enter``, the mode
   this machine supports) and exits, against one that only imports the module.

    python bench/gate.py [--objects 48] [--mb 4] [--rounds 3]

No service is needed (a local artifact folder); run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(tmp: Path) -> None:
    os.environ["DIGITS_DATA_DIR"] = str(tmp / "var")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
    for name in ("DIGITS_S3_ENDPOINT", "DATABASE_URL", "DIGITS_BROKER_URL"):
        os.environ.pop(name, None)
    import django

    django.setup()


def traffic(store, prefix: str, blobs: list[bytes]) -> float:
    """Seconds to write every blob under ``prefix`` and read each back."""
    started = time.perf_counter()
    for i, blob in enumerate(blobs):
        store.put(f"{prefix}shard-{i:04d}", blob)
    for i in range(len(blobs)):
        with store.open(f"{prefix}shard-{i:04d}") as fh:
            while fh.read(1 << 20):
                pass
    return time.perf_counter() - started


def start_seconds(mode: str, workdir: Path, confine: bool, runs: int = 5) -> float:
    from apps.jobs import sandbox
    from apps.jobs.confine import Confinement

    conf = Confinement(
        mode=mode, workdir=str(workdir), uid=200_999, gid=200_999,
        read=sandbox.code_paths(), open_only=[], hidden=list(sandbox.HIDDEN),
    )  # fmt: skip
    code = "import json, sys; from apps.jobs.confine import Confinement, enter; " + (
        "enter(Confinement(**json.loads(sys.argv[1])))" if confine else "pass"
    )
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code, json.dumps(conf.to_json())], cwd=ROOT, check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=48)
    parser.add_argument("--mb", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="digits-bench-gate-"))
    try:
        setup(tmp)
        from apps.core.storage import get_store
        from apps.core.storage.gate import GateStore
        from apps.jobs import sandbox
        from apps.jobs.artifacts import ArtifactGate
        from apps.jobs.kinds import JobKind

        store = get_store()
        size = int(args.mb * 2**20)
        blobs = [os.urandom(size) for _ in range(args.objects)]
        total_mb = args.objects * size / 2**20 * 2  # written and read
        job = SimpleNamespace(pk=1, params={}, staging_prefix="_staging/jobs/1/attempt-1/")
        folder = tmp / "job"
        folder.mkdir()
        gate = ArtifactGate(job, JobKind(), str(folder), None)
        gate.start(process_group=os.getpgid(0))
        through_gate = GateStore(gate.path)
        direct, gated = [], []
        for _ in range(args.rounds):
            direct.append(traffic(store, job.staging_prefix + "direct/", blobs))
            gated.append(traffic(through_gate, job.staging_prefix + "gate/", blobs))
            store.discard_prefix(job.staging_prefix)
        gate.close()
        d, g = statistics.median(direct), statistics.median(gated)
        print(f"artifacts: {args.objects} x {args.mb:g} MB written and read, {args.rounds} rounds")
        print(f"  direct store   {total_mb / d:8.0f} MB/s")
        print(f"  through gate   {total_mb / g:8.0f} MB/s")
        print(f"  ratio gate/direct throughput: {d / g:.2f}")

        mode = sandbox.mode()
        if mode != "none":
            work = tmp / "work"
            work.mkdir(mode=0o700)
            if mode == "namespaces":
                os.chown(work, 200_999, 200_999)
            plain = start_seconds(mode, work, confine=False)
            confined = start_seconds(mode, work, confine=True)
            print(f"start-up ({mode}): plain {plain * 1000:.0f} ms, confined "
                  f"{confined * 1000:.0f} ms, ratio {confined / plain:.2f}")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
