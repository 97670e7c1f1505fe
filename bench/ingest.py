"""Benchmark: image classification ingestion, platform job vs a plain single-process script.

    .venv/bin/python bench/ingest.py [--images 20000] [--memory-images 5000] [--rounds 3]

Writes ``--images`` PNG files of ``--size`` pixels square (RGB, random-ish content: a
smooth per-image gradient in a class colour plus noise) into one folder per class
(``--classes``, default 10) of a temporary folder — written once, not timed — and then
turns them into ``--out`` × ``--out`` PNG-encoded TFRecord shards in two ways:

- **platform**: the generic dataset job (``BuildDataset.run``, the code a job process
  runs for ``dataset.build``) with the ``image-classification`` type, the server-folder
  source, ``png`` encoding, squash resize and ``--processes`` encoding processes. It runs
  in-process in a forked child (standing in for the job process) with a stand-in job
  context that writes to a ``LocalStore`` in the temporary folder and records status
  lines instead of sending events: no database, broker or worker is involved. The worker
  only relays the job's events (batched, four messages a second), so what is measured is
  where the work is — listing, decoding, resizing, PNG encoding, the pool, framing and
  writing the shards.
- **baseline**: a plain script in one process — list the class folders, then per image
  Pillow decode, convert to RGB, bilinear resize, PNG encode with the same settings, frame
  with ``apps.datasets.tfrecord.frame`` and append to the shard file; per shard an index
  and a labels ``.npy``, with the platform's shard size.

Both see the images in the same order (``shuffle`` off, everything in the train stage, no
mean image unless ``--mean-image``), so their shards must be byte-identical; the bench
checks it (SHA-256 of every shard file) and exits 1 if they differ. Each run is a fresh
forked process; a thread in the parent samples the memory of that process and of its
children (the pool) every 100 ms: RSS, and PSS, which counts pages the processes share
once (RSS sums count them in every process). Throughput is images over wall time from the
start of listing to the last shard written. ``--rounds`` alternates baseline and platform
runs and keeps each one's fastest. CPU time per image (user + system of the process and
its pool) is printed beside it: it moves much less with the load of a shared machine than
wall time does, and the least of each side's runs gives the ratio two idle cores would
reach (the pool's processes each busy on a core). Finally the platform runs once more on
a ``--memory-images`` subset (default a quarter; hard links to the same files) to compare
its peak memory. Settings load with a temporary ``DIGITS_DATA_DIR``, so ``./var`` is never
touched; no services are needed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BenchContext, setup_django_without_services  # noqa: E402

MB = 2**20


def setup_django(tmp: Path) -> None:
    setup_django_without_services(
        tmp, "image-classification", "digits-image-classification", "digits_imageclass"
    )


# --- the images ---------------------------------------------------------------------------
def make_images(root: Path, count: int, classes: int, size: int, seed: int = 0) -> list[Path]:
    """``root/c<k>/img_<n>.png``: ``count`` RGB images spread evenly over the classes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    folders = [root / f"c{k}" for k in range(classes)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    colours = rng.uniform(40, 215, size=(classes, 3)).astype(np.float32)
    paths = []
    for n in range(count):
        k = n % classes
        gx, gy = rng.uniform(-80, 80, size=2).astype(np.float32)
        base = colours[k] + gx * ramp[None, :, None] + gy * ramp[:, None, None]
        pixels = base + rng.normal(0, 12, size=(size, size, 3)).astype(np.float32)
        path = folders[k] / f"img_{n:06d}.png"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def link_subset(source: Path, target: Path, count: int, classes: int) -> None:
    """The first ``count`` images of ``source`` (by number), hard-linked into ``target``."""
    for n in range(count):
        name = f"c{n % classes}/img_{n:06d}.png"
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        os.link(source / name, target / name)


# --- the two ways -------------------------------------------------------------------------


def platform_options(folder: Path, out: int, mean_image: bool) -> dict:
    return {
        "source": "folder", "folder": str(folder), "image_type": "color",
        "width": out, "height": out, "resize_mode": "squash", "encoding": "png",
        "val_percent": 0, "test_percent": 0, "min_per_class": 2, "shuffle": False, "seed": 0,
        "mean_image": mean_image,
    }  # fmt: skip


def run_platform(folder: Path, store_root: Path, prefix: str, out: int, processes: int,
                 mean_image: bool) -> dict:  # fmt: skip
    from apps.core.storage import LocalStore
    from apps.datasets.kinds import BuildDataset

    params = {
        "dataset_id": 0, "type": "image-classification", "processes": processes,
        "max_error_percent": 0, "options": platform_options(folder, out, mean_image),
    }  # fmt: skip
    ctx = BenchContext(params, LocalStore(store_root), prefix)
    cpu_before, start = cpu_seconds(), time.perf_counter()
    own_before = cpu_seconds(resource.RUSAGE_SELF)
    manifest = BuildDataset().run(ctx)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu_before
    own = cpu_seconds(resource.RUSAGE_SELF) - own_before
    assert manifest["error_count"] == 0, manifest["errors"][:3]
    images = sum(stage["count"] for stage in manifest["stages"].values())
    return {
        "images": images, "wall": wall, "cpu": cpu, "job_cpu": own,
        "listing": ctx.marks["Encoding train"] - start,
        "shards": {
            shard[name]: shard[f"{name}_sha256"]
            for shard in manifest["stages"]["train"]["shards"]
            for name in ("images", "index", "labels")
        },
        "store": str(store_root / prefix),
    }  # fmt: skip


def run_baseline(folder: Path, target: Path, out: int, mean_image: bool) -> dict:
    """The plain script: one process, Pillow and NumPy, the same shard format."""
    from PIL import Image

    from apps.datasets.shards import shard_size_for
    from apps.datasets.tfrecord import frame

    cpu_before, start = cpu_seconds(), time.perf_counter()
    classes = sorted(p.name for p in os.scandir(folder) if p.is_dir())
    files = [
        (os.path.join(folder, name, f), label)
        for label, name in enumerate(classes)
        for f in sorted(os.listdir(os.path.join(folder, name)))
        if f.endswith(".png")
    ]
    listing = time.perf_counter() - start
    shard_size = shard_size_for(out * out * 3)
    (target / "train").mkdir(parents=True, exist_ok=True)
    mean = np.zeros((out, out, 3), np.float64) if mean_image else None
    for index, first in enumerate(range(0, len(files), shard_size)):
        chunk = files[first : first + shard_size]
        offsets, labels, position = [], [], 0
        with open(target / f"train/images-{index:05d}.tfrecord", "wb") as shard:
            for path, label in chunk:
                with Image.open(path) as image:
                    small = image.convert("RGB").resize((out, out), Image.Resampling.BILINEAR)
                if mean is not None:
                    mean += np.asarray(small)
                buffer = io.BytesIO()
                small.save(buffer, format="PNG")
                record = frame(buffer.getvalue())
                shard.write(record)
                offsets.append(position)
                labels.append(label)
                position += len(record)
        np.save(target / f"train/index-{index:05d}.npy", np.asarray(offsets, np.int64))
        np.save(target / f"train/labels-{index:05d}.npy", np.asarray(labels, np.int64))
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu_before
    return {"images": len(files), "wall": wall, "cpu": cpu, "listing": listing,
            "store": str(target)}  # fmt: skip


def cpu_seconds(who: int | None = None) -> float:
    """User + system CPU time of this process and its finished children (the pool's workers)."""
    kinds = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) if who is None else (who,)
    return sum(usage.ru_utime + usage.ru_stime for usage in map(resource.getrusage, kinds))


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        f"{path.parent.name}/{path.name}": hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.glob("train/*"))
        if path.suffix in (".tfrecord", ".npy")
    }


# --- a measured run: a forked process, its memory sampled from here ----------------------------
def _child(conn, fn, args) -> None:
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        import traceback

        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def measured(fn, *args) -> dict:
    """Run ``fn(*args)`` in a forked process; its result plus peak RSS figures (bytes)."""
    import psutil

    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    proc = context.Process(target=_child, args=(send, fn, args))
    proc.start()
    send.close()
    peaks = {"total": 0, "pss": 0, "job": 0, "child": 0, "children": 0}
    stop = threading.Event()

    def sample() -> None:
        try:
            job = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            try:
                job_mem = job.memory_full_info()
                children = []
                for child in job.children(recursive=True):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        children.append(child.memory_full_info())
            except psutil.NoSuchProcess:
                return
            peaks["job"] = max(peaks["job"], job_mem.rss)
            peaks["child"] = max([peaks["child"], *(c.rss for c in children)])
            peaks["children"] = max(peaks["children"], len(children))
            peaks["total"] = max(peaks["total"], job_mem.rss + sum(c.rss for c in children))
            peaks["pss"] = max(peaks["pss"], job_mem.pss + sum(c.pss for c in children))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        status, value = receive.recv()
    except EOFError:
        status, value = "error", "the measured process died without an answer"
    stop.set()
    sampler.join()
    proc.join()
    if status != "ok":
        raise RuntimeError(value)
    return {**value, "rss": peaks}


# --- reporting ---------------------------------------------------------------------------------
def describe(name: str, r: dict) -> str:
    rss = r["rss"]
    pool = (
        f" + {rss['children']} pool processes ≤ {rss['child'] / MB:.0f} MB each"
        if rss["children"]
        else ""
    )
    split = ""
    if "job_cpu" in r:
        split = (
            f" (job process {1000 * r['job_cpu'] / r['images']:.3f}, "
            f"pool {1000 * (r['cpu'] - r['job_cpu']) / r['images']:.3f})"
        )
    return (
        f"{name}: {r['images']} images in {r['wall']:.2f} s = {r['images'] / r['wall']:.0f} images/s "
        f"(listing {r['listing']:.2f} s); {1000 * r['cpu'] / r['images']:.3f} ms CPU per image"
        f"{split}; peak PSS {rss['pss'] / MB:.0f} MB, peak RSS {rss['total'] / MB:.0f} MB "
        f"(job {rss['job'] / MB:.0f} MB{pool})"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20000, help="images in all (default 20000)")
    parser.add_argument(
        "--memory-images", type=int, default=None,
        help="images of the smaller run compared for memory (default a quarter of --images; "
        "0: skip)",
    )  # fmt: skip
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=64, help="side of the source images")
    parser.add_argument("--out", type=int, default=32, help="side of the dataset's images")
    parser.add_argument("--processes", type=int, default=2, help="the job's encoding processes")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, fastest kept")
    parser.add_argument("--mean-image", action="store_true", help="both compute the mean image")
    args = parser.parse_args(argv)
    if args.memory_images is None:
        args.memory_images = args.images // 4

    with tempfile.TemporaryDirectory(prefix="digits-bench-ingest-") as name:
        tmp = Path(name)
        setup_django(tmp)
        # Imported before the forks, as in a job process.
        import digits_imageclass.data  # noqa: F401

        import apps.datasets.building  # noqa: F401

        started = time.perf_counter()
        full = tmp / "data" / "full"
        make_images(full, args.images, args.classes, args.size)
        print(
            f"images: {args.images} PNG {args.size}×{args.size} RGB in {args.classes} class "
            f"folders, written in {time.perf_counter() - started:.1f} s (not timed); "
            f"output {args.out}×{args.out} PNG; CPUs: {os.cpu_count()}, "
            f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}"
        )
        warm = tmp / "data" / "warm"
        link_subset(full, warm, min(args.images, 40 * args.classes), args.classes)
        run_baseline(warm, tmp / "warm-baseline", args.out, args.mean_image)  # imports, caches
        run_platform(warm, tmp / "store", "warm/", args.out, 1, args.mean_image)

        baselines, platforms = [], []
        for n in range(args.rounds):
            baselines.append(
                measured(run_baseline, full, tmp / f"baseline-{n}", args.out, args.mean_image)
            )
            platforms.append(
                measured(
                    run_platform,
                    full,
                    tmp / "store",
                    f"platform-{n}/",
                    args.out,
                    args.processes,
                    args.mean_image,
                )  # fmt: skip
            )
        base = min(baselines, key=lambda r: r["wall"])
        plat = min(platforms, key=lambda r: r["wall"])
        print(describe("baseline (plain script, 1 process)", base))
        print(describe(f"platform (dataset.build, {args.processes} encoding processes)", plat))
        for label, runs in (("baseline", baselines), ("platform", platforms)):
            each = ", ".join(
                f"{r['images'] / r['wall']:.0f}/s at {1000 * r['cpu'] / r['images']:.3f} ms"
                for r in runs
            )
            print(f"  {label} runs (images/s at CPU per image): {each}")
        ratio = base["wall"] / plat["wall"]
        # CPU time per image moves less with the load than wall time: the least of each
        # side's runs (the one least disturbed) decides what two idle cores would give.
        cpu_ratio = min(r["cpu"] / r["images"] for r in platforms) / min(
            r["cpu"] / r["images"] for r in baselines
        )
        cores = min(args.processes, os.cpu_count() or 1)
        print(
            f"ratio platform / baseline: {ratio:.2f}× images/s (target ≥ 1.6× on 2 cores); "
            f"least CPU per image {cpu_ratio:.2f}× the baseline's, so with {cores} idle cores "
            f"the platform would reach {cores / cpu_ratio:.2f}×"
        )
        same = file_hashes(Path(base["store"])) == plat["shards"]
        print(f"shards identical (SHA-256 of every file): {'yes' if same else 'NO'}")

        if args.memory_images:
            subset = tmp / "data" / "subset"
            link_subset(full, subset, min(args.memory_images, args.images), args.classes)
            small = measured(
                run_platform, subset, tmp / "store", "memory/", args.out, args.processes,
                args.mean_image,
            )  # fmt: skip
            print(describe("platform, smaller set", small))
            print(
                f"memory of the job process and its pool, {small['images']} vs {plat['images']} "
                f"images: peak PSS {small['rss']['pss'] / MB:.0f} vs {plat['rss']['pss'] / MB:.0f} MB, "
                f"peak RSS {small['rss']['total'] / MB:.0f} vs {plat['rss']['total'] / MB:.0f} MB "
                f"(job process alone {small['rss']['job'] / MB:.0f} vs "
                f"{plat['rss']['job'] / MB:.0f} MB); baseline PSS {base['rss']['pss'] / MB:.0f} MB"
            )
        print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
