"""tf.data input pipelines over a built dataset's shards (job processes only)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import tensorflow as tf

from apps.datasets import shards
from apps.datasets.shards import NPY_FORMAT


def _files(info: SimpleNamespace, stage: str, field: str) -> list[str]:
    return [
        str(shards.local_copy(info, shard[field]))
        for shard in info.manifest["stages"][stage]["shards"]
    ]


def labels_of(info: SimpleNamespace, stage: str) -> np.ndarray:
    parts = [np.load(path) for path in _files(info, stage, "labels")]
    return np.concatenate(parts) if parts else np.zeros((0,), np.int64)


def _decoder(manifest):
    height, width, channels = manifest["feature"]["shape"]
    encoding = manifest["encoding"]
    dtype = tf.uint16 if manifest["feature"]["dtype"] == "uint16" else tf.uint8

    def decode(record):
        if encoding == "none":
            image = tf.reshape(tf.io.decode_raw(record, dtype), (height, width, channels))
        elif encoding == "png":
            image = tf.io.decode_png(record, channels=channels, dtype=dtype)
        else:
            image = tf.io.decode_jpeg(record, channels=channels)
        image = tf.ensure_shape(image, (height, width, channels))
        return tf.cast(image, tf.float32)

    return decode


def stage_pipeline(
    info: SimpleNamespace,
    stage: str,
    *,
    batch_size: int,
    training: bool,
    shuffle: bool,
    seed: int | None,
    augment=None,
    cache: bool = True,
) -> tf.data.Dataset:
    """Batches of ``(float32 HWC images, labels)`` of one stage, cached after the first pass
    (unless ``cache`` is false: one pass, as an evaluation makes).

    Labels: int64 class indices, or uint8 (H, W) masks. ``augment(image, label, seed)``,
    when given, runs on each element after the cache (a fresh draw every epoch), with a
    stateless seed drawn from ``seed``.
    """
    manifest = info.manifest
    labels = labels_of(info, stage)
    if manifest["format"] == NPY_FORMAT:
        features = np.concatenate([np.load(p) for p in _files(info, stage, "features")])
        ds = tf.data.Dataset.from_tensor_slices((features.astype(np.float32), labels))
    else:
        images = tf.data.TFRecordDataset(_files(info, stage, "images")).map(
            _decoder(manifest), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        ds = tf.data.Dataset.zip((images, tf.data.Dataset.from_tensor_slices(labels)))
        # A TFRecord file's length is unknown to tf.data. Keras then finds the end of each
        # epoch by running out of data, and that failed step still advances the optimizer's
        # iteration counter: the learning-rate schedule, progress and snapshots drift by one
        # step per epoch. The manifest knows the count; say so.
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(labels)))
    if cache:
        ds = ds.cache()
    if training and shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    if augment is not None:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda pair, s: augment(pair[0], pair[1], s),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def dataset_info(dataset_id: int, prefix: str, manifest: dict) -> SimpleNamespace:
    """What ``shards.local_copy`` needs, without a database row."""
    return SimpleNamespace(pk=dataset_id, data_prefix=prefix, manifest=manifest)
