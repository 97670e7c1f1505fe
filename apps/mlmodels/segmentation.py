"""Segmentation training pieces: loss, confusion-matrix metric, joint augmentation.

Job processes only (imports TensorFlow); chosen through ``apps.mlmodels.tasks``.
Shapes: images ``(N, H, W, C)`` float32, labels ``(N, H, W)`` integer class per pixel,
network outputs ``(N, H, W, classes)`` per-pixel softmax.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="digits")
class ConfusionMatrix(keras.metrics.Metric):
    """Pixel counts per (true class, predicted class) over the batches seen.

    ``result()`` is the flattened ``classes × classes`` matrix (row: true class); the
    task turns it into pixel accuracy, IoU and Dice (``tasks.confusion_figures``). One
    ``argmax`` and one segment sum per batch: about the cost of Keras' ``accuracy``.
    Labels outside ``0 .. classes-1`` are not counted.
    """

    def __init__(self, num_classes: int, name: str = "confusion", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.counts = self.add_variable(
            shape=(self.num_classes * self.num_classes,),
            initializer="zeros",
            dtype="int64",
            name="counts",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        classes = self.num_classes
        truth = tf.reshape(tf.cast(y_true, tf.int64), [-1])
        predicted = tf.reshape(tf.argmax(y_pred, axis=-1, output_type=tf.int64), [-1])
        valid = (truth >= 0) & (truth < classes)
        index = tf.boolean_mask(truth * classes + predicted, valid)
        # A segment sum of int32 ones, not ``bincount``: deterministic on a GPU, so a seeded
        # run (which enables TensorFlow's op determinism) may use it there too.
        counts = tf.math.unsorted_segment_sum(
            tf.ones_like(index, dtype=tf.int32), index, classes * classes
        )
        self.counts.assign_add(tf.cast(counts, tf.int64))

    def result(self):
        return tf.identity(self.counts)

    def reset_state(self):
        self.counts.assign(tf.zeros_like(self.counts))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="digits")
class SegmentationLoss(keras.losses.Loss):
    """Per-pixel cross-entropy, each pixel weighted by its true class's weight (a weighted
    mean: the weights change the classes' shares, not the loss's scale), plus
    ``dice_weight`` × the soft Dice loss (1 − mean soft Dice of the foreground classes,
    over the batch)."""

    def __init__(self, class_weights=(), dice_weight: float = 0.0, name="segmentation_loss", **kw):
        super().__init__(name=name, **kw)
        self.class_weights = [float(w) for w in class_weights]
        self.dice_weight = float(dice_weight)

    def call(self, y_true, y_pred):
        labels = tf.cast(y_true, tf.int32)
        if labels.shape.rank == y_pred.shape.rank:
            labels = tf.squeeze(labels, -1)
        cross_entropy = keras.losses.sparse_categorical_crossentropy(labels, y_pred)
        if self.class_weights:
            weights = tf.gather(tf.constant(self.class_weights, y_pred.dtype), labels)
            loss = tf.reduce_sum(cross_entropy * weights) / tf.maximum(
                tf.reduce_sum(weights), keras.backend.epsilon()
            )
        else:
            loss = tf.reduce_mean(cross_entropy)
        if self.dice_weight:
            loss += self.dice_weight * soft_dice_loss(labels, y_pred)
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "class_weights": self.class_weights,
            "dice_weight": self.dice_weight,
        }


def soft_dice_loss(labels, probabilities, smooth: float = 1.0):
    """1 − the mean soft Dice of the foreground classes (all of them with one class)."""
    classes = probabilities.shape[-1]
    truth = tf.one_hot(labels, classes, dtype=probabilities.dtype)
    axes = tf.range(tf.rank(probabilities) - 1)
    overlap = tf.reduce_sum(truth * probabilities, axis=axes)
    sizes = tf.reduce_sum(truth, axis=axes) + tf.reduce_sum(probabilities, axis=axes)
    dice = (2 * overlap + smooth) / (sizes + smooth)
    return 1.0 - tf.reduce_mean(dice[1:] if classes > 1 else dice)


def loss(class_weights, dice_weight: float):
    """Keras' own cross-entropy when neither option is set (the cheapest), else the
    weighted / Dice loss."""
    if not class_weights and not dice_weight:
        return keras.losses.SparseCategoricalCrossentropy()
    return SegmentationLoss(class_weights, dice_weight)


def joint_augmentation(options: dict):
    """``(image, mask, seed) -> (image, mask)`` applying one random geometric transform to
    both — flips, rotation up to ``rotation_degrees``, a zoom-in crop up to ``crop_percent``
    (which also scales) — bilinear for the image, nearest for the mask; or ``None`` when no
    geometric option is set. ``seed``: a stateless seed (2 int64) per element, so the
    pipeline is reproducible whatever its parallelism."""
    flip_h, flip_v = bool(options.get("flip_horizontal")), bool(options.get("flip_vertical"))
    rotation = math.radians(float(options.get("rotation_degrees") or 0))
    crop = float(options.get("crop_percent") or 0) / 100.0
    if not (flip_h or flip_v or rotation or crop):
        return None

    def augment(image, mask, seed):
        draws = tf.random.stateless_uniform([5], seed=seed)
        height = tf.cast(tf.shape(image)[0], tf.float32)
        width = tf.cast(tf.shape(image)[1], tf.float32)
        angle = (draws[0] * 2 - 1) * rotation
        scale = 1.0 - draws[1] * crop  # sampling a smaller window zooms in
        sx = tf.where(flip_h & (draws[2] < 0.5), -scale, scale)
        sy = tf.where(flip_v & (draws[3] < 0.5), -scale, scale)
        shift = (draws[4] * 2 - 1) * (1 - scale) / 2  # where the window lies, within the image
        transform = _centred_transform(angle, sx, sy, shift * width, shift * height, width, height)
        image = _warp(image, transform, "BILINEAR")
        mask = _warp(tf.cast(mask[..., None], tf.float32), transform, "NEAREST")[..., 0]
        return image, tf.cast(mask, tf.uint8)

    return augment


def _centred_transform(angle, sx, sy, dx, dy, width, height):
    """The projective transform (output → input pixel) rotating by ``angle`` and scaling by
    ``(sx, sy)`` about the image centre, then shifting by ``(dx, dy)``."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = tf.cos(angle), tf.sin(angle)
    a0, a1 = cos * sx, -sin * sy
    b0, b1 = sin * sx, cos * sy
    a2 = cx - a0 * cx - a1 * cy + dx
    b2 = cy - b0 * cx - b1 * cy + dy
    return tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])


def _warp(image, transform, interpolation: str):
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation=interpolation,
        fill_mode="REFLECT",
    )
    return out[0]
