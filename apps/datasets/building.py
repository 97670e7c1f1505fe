"""The generic dataset build (job kind ``dataset.build``): a data plugin's entries → shards.

Rule for bad input: an entry that cannot be encoded (``encode_entry`` raised,
``itemize_entries`` returned an ``EntryError``, or the shape differs from the
first entry's) is skipped, logged and listed in ``errors.json``. The job fails
— and the dataset stays invisible — when ``itemize_entries`` raises, when no
entry at all could be encoded, or when the share of bad entries exceeds
``max_error_percent``. Nothing is published unless the job succeeds.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from typing import Any

import numpy as np
from PIL import Image

from apps.core.plugins import STAGES, EntryError
from apps.core.plugins.catalog import get_data_ingestion
from apps.datasets.shards import (
    IMAGE_CHANNELS,
    NPY_FORMAT,
    TFRECORD_FORMAT,
    StageWriter,
    encode_image,
    encode_pil_image,
    image_to_array,
    shard_size_for,
    to_npy_bytes,
)

MAX_LOGGED_ERRORS = 50
PROGRESS_SECONDS = 0.5
#: Entries a pool process encodes per task, and tasks in flight per pool process.
CHUNK_ENTRIES = 64
CHUNKS_PER_PROCESS = 4

_worker_ingestion = None


def _init_worker(ingestion) -> None:
    global _worker_ingestion
    _worker_ingestion = ingestion


def _init_pool_process(ingestion) -> None:
    """A pool process dies with the job process (a killed job leaves no encoder running)."""
    from apps.jobs.confine import die_with_parent

    die_with_parent()
    _init_worker(ingestion)


def _encode(task) -> tuple:
    """Encode one entry in a pool process.

    ``task`` is ``(entry, keep_array)``. Returns ``("ok", features, payload, label,
    (shape, dtype))`` — ``payload`` the stored bytes for image encodings,
    ``features`` the decoded array when needed (npy storage, mean image) — or
    ``("error", message, None, None, None)``.
    """
    entry, keep_array = task
    if isinstance(entry, EntryError):
        return "error", str(entry), None, None, None
    try:
        features, label = _worker_ingestion.encode_entry(entry)
        encoding = _worker_ingestion.get_encoding()
        if isinstance(features, Image.Image):
            # An 8-bit image decoded with Pillow: encoded as it is, without a round trip
            # through an array (two copies, a large share of the cost of small images).
            image = features
            if image.mode not in IMAGE_CHANNELS:
                raise EntryError(f"encode_entry returned a {image.mode} image; use L or RGB")
            meta = ([image.height, image.width, IMAGE_CHANNELS[image.mode]], "uint8")
            payload = encode_pil_image(image, encoding) if encoding else None
            kept = image_to_array(image) if keep_array or payload is None else None
            return "ok", kept, payload, label, meta
        if not isinstance(features, np.ndarray) or features.ndim != 3:
            shape = getattr(features, "shape", type(features).__name__)
            raise EntryError(f"encode_entry must return HWC features, got {shape}")
        payload = encode_image(features, encoding) if encoding else None
    except EntryError as exc:
        return "error", str(exc), None, None, None
    except Exception as exc:
        return "error", f"{type(exc).__name__}: {exc}", None, None, None
    kept = features if keep_array or payload is None else None
    return "ok", kept, payload, label, (list(features.shape), _dtype_name(features.dtype))


_DTYPE_NAMES: dict[np.dtype, str] = {}


def _dtype_name(dtype: np.dtype) -> str:
    """``str(dtype)``, remembered: NumPy builds the name in Python on every call."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype)
    return name


def _encode_chunk(tasks: list) -> list[tuple]:
    """``_encode`` for a run of entries: one round trip to a pool process for all of them."""
    return [_encode(task) for task in tasks]


def build(ctx) -> dict[str, Any]:
    """Encode every stage's entries into shards; the manifest is the job's result."""
    params = ctx.params
    ingestion = get_data_ingestion(params["type"])(**params["options"])
    # Everything loaded so far (Django, the plugin) lives as long as the job: the
    # garbage collector need not walk it again while the entries are listed, nor may
    # the pool's processes (see _Builder._start_pool).
    gc.freeze()
    try:
        ctx.status("Listing entries")
        entries = {stage: list(ingestion.itemize_entries(stage)) for stage in STAGES}
        total = sum(len(e) for e in entries.values())
        if total == 0:
            raise ValueError("The data source has no entries in any stage.")
        ctx.log(", ".join(f"{stage}: {len(e)} entries" for stage, e in entries.items()))
        builder = _Builder(ctx, ingestion, total, params)
        try:
            for stage in STAGES:
                builder.encode_stage(stage, entries[stage])
        finally:
            builder.close()
        return builder.finish(params["max_error_percent"])
    finally:
        gc.unfreeze()


class _Builder:
    def __init__(self, ctx, ingestion, total: int, params: dict[str, Any]):
        self.ctx, self.ingestion, self.total = ctx, ingestion, total
        self.processes = params["processes"]
        self.encoding = ingestion.get_encoding()
        self.done = 0
        self.errors: list[dict[str, str]] = []
        self.spec: dict[str, Any] | None = None
        self.stages: dict[str, Any] = {}
        self.mean_sum: np.ndarray | None = None
        self.mean_count = 0
        self.last_progress = 0.0
        self._pool: ProcessPoolExecutor | None = None

    def _outcomes(self, tasks: list[tuple[Any, bool]]):
        if self.processes == 1 or len(tasks) < 2:
            _init_worker(self.ingestion)
            yield from map(_encode, tasks)
            return
        pool = self._pool or self._start_pool()
        chunks = (tasks[i : i + CHUNK_ENTRIES] for i in range(0, len(tasks), CHUNK_ENTRIES))
        # A sliding window of chunks, in order: bounded memory (never more than
        # CHUNKS_PER_PROCESS chunks per process in flight), and no pause between
        # windows — a chunk is submitted as soon as the oldest one has been taken.
        window = self.processes * CHUNKS_PER_PROCESS
        pending = deque(pool.submit(_encode_chunk, c) for c in islice(chunks, window))
        try:
            while pending:
                outcomes = pending.popleft().result()
                pending.extend(pool.submit(_encode_chunk, c) for c in islice(chunks, 1))
                yield from outcomes
        finally:
            for future in pending:  # stopped early (abort, failure): skip the rest
                future.cancel()

    def _start_pool(self) -> ProcessPoolExecutor:
        """The encoding processes, one set for every stage of the build.

        Forked, so they inherit the loaded plugin and settings without importing them
        again. Before the fork, every object the job process holds goes into the garbage
        collector's permanent generation (``gc.freeze``): the pool's collections then
        never walk the inherited heap — Django, the plugin, the entries — which cost each
        pool process CPU time and copies of the pages they touched (about a tenth of its
        time per image in ``bench/ingest.py``). ``BuildDataset.run`` undoes it at the end.
        """
        gc.freeze()
        self._pool = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_pool_process,
            initargs=(self.ingestion,),
        )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def encode_stage(self, stage: str, items: list[Any]) -> None:
        self.ctx.status(f"Encoding {stage}")
        keep = stage == "train" and self.ingestion.wants_mean_image()
        writer = None
        class_counts: dict[int, int] = {}
        tasks = [(item, keep) for item in items]
        for entry, (outcome, features, payload, label, meta) in zip(
            items, self._outcomes(tasks), strict=True
        ):
            self.ctx.check_abort()
            self.done += 1
            if outcome != "ok":
                self._error(stage, entry, features)
            elif (problem := self._check_shape(meta, label)) is not None:
                self._error(stage, entry, problem)
            else:
                if writer is None:
                    writer = StageWriter(
                        self.ctx.store, self.ctx.staging_prefix, stage,
                        self.spec["shard_size"], self.encoding,
                    )  # fmt: skip
                writer.add(payload if self.encoding else features, label)
                if not isinstance(label, np.ndarray):
                    class_counts[int(label)] = class_counts.get(int(label), 0) + 1
                if keep:
                    self._add_to_mean(features)
            self._report_progress()
        summary = {"count": 0, "shards": []}
        if writer is not None:
            writer.flush()
            summary = writer.summary()
        if class_counts:
            summary["class_counts"] = {str(k): v for k, v in sorted(class_counts.items())}
        self.stages[stage] = summary

    def _add_to_mean(self, features: np.ndarray) -> None:
        if self.mean_sum is None:
            self.mean_sum = np.zeros(features.shape, np.float64)
        self.mean_sum += features
        self.mean_count += 1

    def _check_shape(self, meta, label: Any) -> str | None:
        shape, dtype = meta
        label_shape = list(label.shape) if isinstance(label, np.ndarray) else []
        if self.spec is None:
            entry_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            self.spec = {
                "feature": {"shape": shape, "dtype": dtype, "layout": "HWC"},
                "label": {
                    "kind": "mask" if label_shape else "class",
                    "shape": label_shape,
                    "dtype": str(label.dtype) if label_shape else "int64",
                },
                "shard_size": shard_size_for(entry_bytes),
            }
            return None
        expected = self.spec["feature"]
        if shape != expected["shape"] or dtype != expected["dtype"]:
            return (
                f"features {tuple(shape)} {dtype} differ from the first entry's "
                f"{tuple(expected['shape'])} {expected['dtype']}"
            )
        if label_shape != self.spec["label"]["shape"]:
            return f"label shape {tuple(label_shape)} differs from {tuple(self.spec['label']['shape'])}"
        return None

    def _error(self, stage: str, entry: Any, message: str) -> None:
        self.errors.append({"stage": stage, "entry": str(entry)[:500], "error": message})
        if len(self.errors) <= MAX_LOGGED_ERRORS:
            self.ctx.log(f"Skipped {stage} entry {str(entry)[:200]}: {message}", level="warning")

    def _report_progress(self) -> None:
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_SECONDS or self.done == self.total:
            self.last_progress = now
            self.ctx.progress(self.done / self.total, text=f"{self.done} of {self.total} entries")

    def finish(self, max_error_percent: float) -> dict[str, Any]:
        encoded = sum(s["count"] for s in self.stages.values())
        if len(self.errors) > MAX_LOGGED_ERRORS:
            more = len(self.errors) - MAX_LOGGED_ERRORS
            self.ctx.log(f"… and {more} more skipped entries", level="warning")
        if encoded == 0:
            first = self.errors[0]["error"] if self.errors else "no entries"
            raise ValueError(f"No entry could be encoded ({len(self.errors)} bad; first: {first}).")
        percent = 100.0 * len(self.errors) / self.total
        if percent > max_error_percent:
            raise ValueError(
                f"{len(self.errors)} of {self.total} entries ({percent:.1f} %) could not be encoded, "
                f"more than the allowed {max_error_percent:g} %; see the log."
            )
        store, prefix = self.ctx.store, self.ctx.staging_prefix
        manifest = {
            "format": TFRECORD_FORMAT if self.encoding else NPY_FORMAT,
            "encoding": self.encoding,
            "type": self.ctx.params["type"],
            "task": self.ingestion.get_task(),
            **self.spec,
            "stages": self.stages,
            "error_count": len(self.errors),
            "errors": self.errors[:MAX_LOGGED_ERRORS],
        }
        names = self.ingestion.get_label_names()
        if names:
            manifest["label_names"] = list(names)
            store.put(prefix + "labels.txt", ("\n".join(names) + "\n").encode())
        notes = self.ingestion.get_notes()
        if notes:
            manifest["notes"] = [str(note) for note in notes]
        if self.mean_count:
            mean = self.mean_sum / self.mean_count
            store.put(prefix + "mean.npy", to_npy_bytes(mean.astype(np.float32)))
            preview = mean / 257 if self.spec["feature"]["dtype"] == "uint16" else mean  # 8 bits
            store.put(prefix + "mean.png", encode_image(np.round(preview).astype(np.uint8), "png"))
            manifest["mean"] = {"npy": "mean.npy", "png": "mean.png", "count": self.mean_count}
        store.put(prefix + "errors.json", json.dumps(self.errors, indent=1).encode())
        store.put(prefix + "manifest.json", json.dumps(manifest, indent=1).encode())
        counts = ", ".join(f"{s}: {v['count']}" for s, v in self.stages.items())
        self.ctx.log(f"Encoded {encoded} entries ({counts}); {len(self.errors)} skipped")
        return manifest
