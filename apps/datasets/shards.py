"""The on-store format of a built dataset: shards plus a manifest.

Layout under the build job's artifact prefix::

    manifest.json                   see below
    errors.json                     every entry that could not be encoded
    labels.txt                      class names, one per line (if the type has them)
    mean.npy, mean.png              mean image of the train stage (if asked for)
    <stage>/labels-00000.npy        (n,) int64 class indices, or (n, H, W) uint8 masks
    # "npy" format (decoded arrays, any dtype):
    <stage>/features-00000.npy      (n, H, W, C)
    # "tfrecord" format (images, ``encoding`` png / jpg / none):
    <stage>/images-00000.tfrecord   one record per entry: the encoded image bytes
    <stage>/index-00000.npy         (n,) int64 byte offset of each record

The manifest (``format: "digits-npy/1"`` or ``"digits-tfrecord/1"``) records
feature and label shape and dtype, the encoding, the shard size, and per stage
the count, the count per class and each shard's files with their SHA-256.
Every shard holds ``shard_size`` entries except a stage's last.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np
from django.conf import settings
from PIL import Image

from apps.core.storage import ArtifactStore, get_store
from apps.datasets import tfrecord

NPY_FORMAT = "digits-npy/1"
TFRECORD_FORMAT = "digits-tfrecord/1"
TARGET_SHARD_BYTES = 32 * 2**20


def to_npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


#: Channels of the Pillow image modes ``encode_entry`` may return instead of an array.
IMAGE_CHANNELS = {"L": 1, "RGB": 3}


def encode_image(features: np.ndarray, encoding: str) -> bytes:
    """HWC image → stored bytes (``png``, ``jpg`` or ``none`` = raw pixels)."""
    if encoding == "none":
        return np.ascontiguousarray(features).tobytes()
    return encode_pil_image(
        Image.fromarray(features[:, :, 0] if features.shape[2] == 1 else features), encoding
    )


def encode_pil_image(image: Image.Image, encoding: str) -> bytes:
    """``encode_image`` of a Pillow image in mode ``L`` or ``RGB``; the same bytes as its array's."""
    if encoding == "none":
        return image.tobytes()  # row by row, channels interleaved: the HWC array's bytes
    out = io.BytesIO()
    if encoding == "png":
        image.save(out, format="PNG")
    elif encoding == "jpg":
        image.save(out, format="JPEG", quality=90)
    else:
        raise ValueError(f"unknown image encoding {encoding!r}")
    return out.getvalue()


def image_to_array(image: Image.Image) -> np.ndarray:
    """A Pillow image in mode ``L`` or ``RGB`` as an HWC uint8 array."""
    array = np.asarray(image)
    return array[:, :, None] if array.ndim == 2 else array


def decode_image(data: bytes, encoding: str, shape: list[int], dtype: str) -> np.ndarray:
    if encoding == "none":
        return np.frombuffer(data, dtype=dtype).reshape(shape)
    array = np.asarray(Image.open(io.BytesIO(data)))
    return array.reshape(shape)


class StageWriter:
    """Accumulates encoded entries of one stage and writes full shards to the store.

    ``add`` takes the decoded array (``npy``) or the encoded bytes (``tfrecord``). Records
    of a TFRecord shard are framed as they arrive and go to a temporary file (hashed on
    the way), so the job holds no shard in memory however large the shards are.
    """

    def __init__(self, store: ArtifactStore, prefix: str, stage: str, shard_size: int, encoding):
        self.store, self.prefix, self.stage = store, prefix, stage
        self.shard_size, self.encoding = shard_size, encoding
        self.items: list[Any] = []  # npy: the decoded arrays of the shard being filled
        self.labels: list[Any] = []
        self.shards: list[dict[str, Any]] = []
        self.count = 0
        # tfrecord: the shard being filled, its SHA-256 so far and each record's offset
        self._records: IO[bytes] | None = None
        self._records_hash = hashlib.sha256()
        self._offsets: list[int] = []
        self._position = 0

    def add(self, item: np.ndarray | bytes, label: Any) -> None:
        if self.encoding is None:
            self.items.append(item)
        else:
            if self._records is None:
                self._records = tempfile.TemporaryFile(buffering=2**20)  # noqa: SIM115 - closed in flush()
            record = tfrecord.frame(item)
            self._records.write(record)
            self._records_hash.update(record)
            self._offsets.append(self._position)
            self._position += len(record)
        self.labels.append(label)
        self.count += 1
        if len(self.labels) >= self.shard_size:
            self.flush()

    def _put(self, shard: dict[str, Any], name: str, key: str, data: bytes) -> None:
        self.store.put(self.prefix + key, data, content_type="application/octet-stream")
        shard[name] = key
        shard[f"{name}_sha256"] = hashlib.sha256(data).hexdigest()

    def flush(self) -> None:
        if not self.labels:
            return
        index = len(self.shards)
        shard: dict[str, Any] = {"count": len(self.labels)}
        if self.encoding is None:
            features = to_npy_bytes(np.stack(self.items))
            self._put(shard, "features", f"{self.stage}/features-{index:05d}.npy", features)
        else:
            key = f"{self.stage}/images-{index:05d}.tfrecord"
            with self._records as records:
                records.seek(0)
                self.store.put_stream(
                    self.prefix + key, records, self._position,
                    content_type="application/octet-stream",
                )  # fmt: skip
            shard["images"] = key
            shard["images_sha256"] = self._records_hash.hexdigest()
            self._put(
                shard,
                "index",
                f"{self.stage}/index-{index:05d}.npy",
                to_npy_bytes(np.asarray(self._offsets, np.int64)),
            )
            self._records, self._records_hash = None, hashlib.sha256()
            self._offsets, self._position = [], 0
        labels = (
            np.stack(self.labels)
            if isinstance(self.labels[0], np.ndarray)
            else np.asarray(self.labels, np.int64)
        )
        self._put(shard, "labels", f"{self.stage}/labels-{index:05d}.npy", to_npy_bytes(labels))
        self.shards.append(shard)
        self.items, self.labels = [], []

    def summary(self) -> dict[str, Any]:
        return {"count": self.count, "shards": self.shards}


def shard_size_for(entry_bytes: int) -> int:
    return max(1, TARGET_SHARD_BYTES // max(entry_bytes, 1))


# --- reading ------------------------------------------------------------------------
def _cache_dir(dataset) -> Path:
    # Named by the manifest (which lists every shard's SHA-256) as well as the pk: a database
    # started again from empty (every test run, a restore) hands out the same pks again, and
    # must not be served the copies of another dataset that had the pk before.
    manifest = json.dumps(dataset.manifest, sort_keys=True).encode()
    name = f"{dataset.pk}-{hashlib.sha256(manifest).hexdigest()[:16]}"
    path = settings.DATA_DIR / "cache" / "datasets" / name
    # Job processes may open these files by name but not list the folders (apps.jobs.sandbox).
    path.mkdir(mode=0o711, parents=True, exist_ok=True)
    return path


def local_copy(dataset, key: str) -> Path:
    """A local copy of a dataset file (downloaded once), for memory-mapping and seeking.

    In a job process the worker keeps the copy (the job may not write the node's cache).
    """
    store = get_store()
    if hasattr(store, "cached_path"):
        return Path(store.cached_path(dataset.data_prefix + key))
    target = _cache_dir(dataset) / key.replace("/", "__")
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(fd, "wb") as out:
            for chunk in store.stream(dataset.data_prefix + key):
                out.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    return target


def read_entry(dataset, stage: str, index: int) -> tuple[np.ndarray, Any]:
    """Features (HWC) and label of entry ``index`` of ``stage`` (IndexError when out of range)."""
    manifest = dataset.manifest
    info = manifest.get("stages", {}).get(stage)
    if info is None or not 0 <= index < info["count"]:
        raise IndexError(f"{stage} has no entry {index}")
    shard = info["shards"][index // manifest["shard_size"]]
    offset = index % manifest["shard_size"]
    labels = np.load(local_copy(dataset, shard["labels"]), mmap_mode="r")
    label = np.array(labels[offset]) if labels.ndim > 1 else int(labels[offset])
    if manifest["format"] == NPY_FORMAT:
        features = np.array(np.load(local_copy(dataset, shard["features"]), mmap_mode="r")[offset])
        return features, label
    position = int(np.load(local_copy(dataset, shard["index"]), mmap_mode="r")[offset])
    with open(local_copy(dataset, shard["images"]), "rb") as fh:
        data = tfrecord.read_at(fh, position)
    feature = manifest["feature"]
    return decode_image(data, manifest["encoding"], feature["shape"], feature["dtype"]), label
