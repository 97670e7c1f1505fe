"""Benchmark: encoding throughput of the dataset job on a Sunnybrook tree, 1 vs 2 processes.

    .venv/bin/python bench/ingest_plugin.py [--slices 2000] [--size 128] [--processes 1 2]

Writes a Sunnybrook-layout tree of real DICOM files (16-bit, ``--size`` pixels square,
one inner contour per slice; ``digits_sunnybrook.testing.make_tree``) in a temporary
folder, then runs the generic dataset job (``BuildDataset.run``, the code a job process
runs) in this process once per process count. Its context is a stand-in that writes the
shards to a ``LocalStore`` in the temporary folder and records the job's status lines
instead of sending events to a worker: no database, broker or worker is involved, so the
figures are the job's own — listing, DICOM decoding, scaling, contour rasterising, the
pool, the shards and the mean image — and nothing else.

Entries per second are counted over the encoding phase (from the job's "Encoding train"
status to its return, so shard writing is included and listing the folders is not); the
listing time is printed beside it, with the CPU time per entry of all the processes
(listing included), which does not depend on how busy the machine is. Settings load with a temporary ``DIGITS_DATA_DIR``,
so ``./var`` is never touched.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BenchContext, setup_django_without_services  # noqa: E402


def setup_django(tmp: Path) -> None:
    setup_django_without_services(tmp, "sunnybrook", "digits-sunnybrook", "digits_sunnybrook")


def build(tree, store, processes: int) -> dict:
    from apps.datasets.kinds import BuildDataset

    params = {
        "dataset_id": 0, "type": "image-sunnybrook", "processes": processes,
        "max_error_percent": 0,
        "options": {
            "image_folder": str(tree.images), "contour_folder": str(tree.contours),
            "channel_conversion": "L", "val_percent": 10, "seed": 0, "series": {},
        },
    }  # fmt: skip
    ctx = BenchContext(params, store, f"_staging/bench-{processes}/")
    cpu_before = cpu_seconds()
    start = time.perf_counter()
    manifest = BuildDataset().run(ctx)
    end = time.perf_counter()
    cpu = cpu_seconds() - cpu_before
    encoded = sum(stage["count"] for stage in manifest["stages"].values())
    assert manifest["error_count"] == 0, manifest["errors"][:3]
    encoding = end - ctx.marks["Encoding train"]
    return {
        "processes": processes,
        "entries": encoded,
        "listing_s": ctx.marks["Encoding train"] - start,
        "encoding_s": encoding,
        "rate": encoded / encoding,
        "cpu_ms": 1000 * cpu / encoded,
    }


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the pool's workers)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=2000, help="slices in all (default 2000)")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="digits-bench-ingest-") as name:
        tmp = Path(name)
        setup_django(tmp)
        from digits_sunnybrook.testing import make_tree

        from apps.core.storage import LocalStore

        started = time.perf_counter()
        cases = [f"SC-B-{i + 1}" for i in range(args.cases)]
        per_case = -(-args.slices // args.cases)
        tree = make_tree(tmp / "data", cases=cases, slices=per_case, size=args.size)
        print(
            f"tree: {len(tree.slices)} slices of {args.size}×{args.size} in {args.cases} cases, "
            f"written in {time.perf_counter() - started:.1f} s; CPUs: {os.cpu_count()}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        store = LocalStore(tmp / "store")
        build(tree, store, 1)  # warm-up: imports, page cache
        results = [build(tree, store, n) for n in args.processes]
        for r in results:
            print(
                f"{r['processes']} process(es): {r['entries']} entries in {r['encoding_s']:.2f} s "
                f"= {r['rate']:.0f} entries/s (listing {r['listing_s']:.2f} s; "
                f"{r['cpu_ms']:.1f} ms CPU per entry, all processes)"
            )
        if len(results) > 1:
            base = results[0]
            for r in results[1:]:
                print(
                    f"ratio {r['processes']} vs {base['processes']} processes: "
                    f"{r['rate'] / base['rate']:.2f}×"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
