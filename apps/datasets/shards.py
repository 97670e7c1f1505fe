"""The on-store format of a built dataset: NumPy shards plus a manifest.

Layout under the build job's artifact prefix::

    manifest.json                  see below
    errors.json                    every entry that could not be encoded
    labels.txt                     class names, one per line (if the type has them)
    <stage>/features-00000.npy     ndarray (n, H, W, C), the type's dtype
    <stage>/labels-00000.npy       ndarray (n,) int64 class indices, or (n, H, W) uint8 masks

The manifest (``format: "digits-npy/1"``) records the feature and label shape
and dtype, the shard size, and per stage the count and each shard's entry
count and SHA-256. Every shard holds ``shard_size`` entries except a stage's last.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from apps.core.storage import ArtifactStore, get_store

FORMAT = "digits-npy/1"
TARGET_SHARD_BYTES = 32 * 2**20


def to_npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class StageWriter:
    """Accumulates encoded entries of one stage and writes full shards to the store."""

    def __init__(self, store: ArtifactStore, prefix: str, stage: str, shard_size: int):
        self.store, self.prefix, self.stage, self.shard_size = store, prefix, stage, shard_size
        self.features: list[np.ndarray] = []
        self.labels: list[Any] = []
        self.shards: list[dict[str, Any]] = []
        self.count = 0

    def add(self, features: np.ndarray, label: Any) -> None:
        self.features.append(features)
        self.labels.append(label)
        self.count += 1
        if len(self.features) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.features:
            return
        index = len(self.shards)
        shard: dict[str, Any] = {"count": len(self.features)}
        for name, items in (("features", self.features), ("labels", self.labels)):
            array = (
                np.stack(items) if isinstance(items[0], np.ndarray) else np.asarray(items, np.int64)
            )
            data = to_npy_bytes(array)
            key = f"{self.stage}/{name}-{index:05d}.npy"
            self.store.put(self.prefix + key, data, content_type="application/octet-stream")
            shard[name] = key
            shard[f"{name}_sha256"] = hashlib.sha256(data).hexdigest()
        self.shards.append(shard)
        self.features, self.labels = [], []

    def summary(self) -> dict[str, Any]:
        return {"count": self.count, "shards": self.shards}


def shard_size_for(features: np.ndarray, label: Any) -> int:
    entry_bytes = features.nbytes + (label.nbytes if isinstance(label, np.ndarray) else 8)
    return max(1, TARGET_SHARD_BYTES // max(entry_bytes, 1))


# --- reading ------------------------------------------------------------------------
def _cache_dir(dataset_id: int) -> Path:
    path = settings.DATA_DIR / "cache" / "datasets" / str(dataset_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _local_copy(dataset, key: str) -> Path:
    """A local copy of a shard (downloaded once), so entries can be memory-mapped."""
    target = _cache_dir(dataset.pk) / key.replace("/", "__")
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(fd, "wb") as out:
            for chunk in get_store().stream(dataset.data_prefix + key):
                out.write(chunk)
        os.replace(tmp, target)
    return target


def read_entry(dataset, stage: str, index: int) -> tuple[np.ndarray, Any]:
    """Features and label of entry ``index`` of ``stage`` (IndexError when out of range)."""
    manifest = dataset.manifest
    info = manifest.get("stages", {}).get(stage)
    if info is None or not 0 <= index < info["count"]:
        raise IndexError(f"{stage} has no entry {index}")
    shard = info["shards"][index // manifest["shard_size"]]
    offset = index % manifest["shard_size"]
    features = np.load(_local_copy(dataset, shard["features"]), mmap_mode="r")[offset]
    labels = np.load(_local_copy(dataset, shard["labels"]), mmap_mode="r")
    label = labels[offset]
    return np.array(features), (np.array(label) if labels.ndim > 1 else int(label))
