"""Resizing images to the dataset's size with DIGITS' four resize modes.

With ``width_ratio = in_w / out_w`` and ``height_ratio = in_h / out_h``:

- ``squash`` (and any mode when the two ratios are equal): a plain resize to the
  target size; the aspect ratio changes.
- ``crop``: scale, keeping the aspect ratio, so that the image covers the target
  (by the smaller ratio), then cut the excess of the longer dimension equally from
  both ends.
- ``fill``: scale, keeping the aspect ratio, so that the image fits inside the
  target (by the larger ratio; the scaled short side is rounded up by one pixel
  where needed to make the padding even), then fill the two borders of the short
  dimension with uniform random noise in 0..254.
- ``half_crop``: scale, keeping the aspect ratio, by the average of the two ratios
  (short side made even against the target as in ``fill``); then centre-crop the
  long dimension and noise-fill the short one.

Rounding is half away from zero (DIGITS ran on Python 2); interpolation is bilinear.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

SQUASH, CROP, FILL, HALF_CROP = "squash", "crop", "fill", "half_crop"
RESIZE_MODES = (SQUASH, CROP, FILL, HALF_CROP)
#: The modes that may fill borders with noise (and so use ``rng``).
NOISE_MODES = (FILL, HALF_CROP)


def _round(value: float) -> int:
    return int(math.floor(value + 0.5))


def _size(image: np.ndarray | Image.Image) -> tuple[int, int]:
    """``(height, width)`` of an HWC array or a Pillow image."""
    if isinstance(image, Image.Image):
        return image.height, image.width
    return image.shape[0], image.shape[1]


def _array(image: np.ndarray | Image.Image) -> np.ndarray:
    """An HWC uint8 array (1 or 3 channels) of an array or an ``L`` / ``RGB`` Pillow image."""
    if isinstance(image, np.ndarray):
        return image
    array = np.asarray(image)
    return array[:, :, None] if array.ndim == 2 else array


def _scale(image: np.ndarray | Image.Image, height: int, width: int) -> np.ndarray | Image.Image:
    """Bilinear resize to ``height`` × ``width``; an array for an array, else a Pillow image."""
    if _size(image) == (height, width):
        return image
    if isinstance(image, Image.Image):
        return image.resize((width, height), Image.Resampling.BILINEAR)
    channels = image.shape[2]
    pil = Image.fromarray(image[:, :, 0] if channels == 1 else image)
    scaled = np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR))
    return scaled.reshape(height, width, channels)


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # DIGITS drew np.random.randint(0, 255): 0..254 inclusive.
    return rng.integers(0, 255, size=shape, dtype=np.uint8)


def _centre_crop(
    image: np.ndarray | Image.Image, height: int, width: int
) -> np.ndarray | Image.Image:
    """Cut whatever exceeds ``height`` / ``width`` equally from both ends."""
    in_h, in_w = _size(image)
    left = _round((in_w - width) / 2.0) if in_w > width else 0
    top = _round((in_h - height) / 2.0) if in_h > height else 0
    right, bottom = left + min(in_w, width), top + min(in_h, height)
    if isinstance(image, Image.Image):
        if (left, top, right, bottom) == (0, 0, in_w, in_h):
            return image
        return image.crop((left, top, right, bottom))
    return image[top:bottom, left:right]


def resize_image(
    image: np.ndarray | Image.Image,
    height: int,
    width: int,
    mode: str = SQUASH,
    rng: np.random.Generator | None = None,
) -> np.ndarray | Image.Image:
    """``image`` (HWC uint8, 1 or 3 channels) resized to ``(height, width, C)`` uint8.

    ``image`` may also be a Pillow image in mode ``L`` or ``RGB``, and then the result
    is one too (what the dataset job uses: no round trip through an array). ``mode`` is
    one of ``RESIZE_MODES``; ``rng`` draws the noise borders of ``fill`` and
    ``half_crop`` (a fresh unseeded generator if None). An image already of the target
    size is returned unchanged.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; choose one of {', '.join(RESIZE_MODES)}")
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB"):
            raise ValueError(f"expected an L or RGB image, got mode {image.mode}")
        result = _resize(image, height, width, mode, rng)
        if isinstance(result, Image.Image):
            return result
        return Image.fromarray(result[:, :, 0] if result.shape[2] == 1 else result)
    if image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HWC uint8 image, got {image.shape} {image.dtype}")
    return _resize(image, height, width, mode, rng)


def _resize(image, height: int, width: int, mode: str, rng) -> np.ndarray | Image.Image:
    in_h, in_w = _size(image)
    if (in_h, in_w) == (height, width):
        return image
    width_ratio, height_ratio = in_w / width, in_h / height
    if mode == SQUASH or width_ratio == height_ratio:
        return _scale(image, height, width)
    wide = width_ratio > height_ratio  # relatively wider than the target
    if mode == CROP:
        if wide:
            resize_h, resize_w = height, max(width, _round(in_w / height_ratio))
        else:
            resize_h, resize_w = max(height, _round(in_h / width_ratio)), width
        return _centre_crop(_scale(image, resize_h, resize_w), height, width)

    if mode == FILL:
        if wide:
            resize_w = width
            resize_h = max(1, _round(in_h / width_ratio))
            resize_h += (height - resize_h) % 2
        else:
            resize_h = height
            resize_w = max(1, _round(in_w / height_ratio))
            resize_w += (width - resize_w) % 2
        scaled = _array(_scale(image, resize_h, resize_w))
    else:  # HALF_CROP
        ratio = (width_ratio + height_ratio) / 2.0
        resize_w = max(1, _round(in_w / ratio))
        resize_h = max(1, _round(in_h / ratio))
        if wide:
            resize_w = max(resize_w, width)
            resize_h = min(resize_h + (height - resize_h) % 2, height)
        else:
            resize_h = max(resize_h, height)
            resize_w = min(resize_w + (width - resize_w) % 2, width)
        scaled = _array(_centre_crop(_scale(image, resize_h, resize_w), height, width))

    channels = scaled.shape[2]
    rng = rng if rng is not None else np.random.default_rng()
    if wide:
        pad = (height - scaled.shape[0]) // 2
        parts = [_noise(rng, (pad, width, channels)), scaled, _noise(rng, (pad, width, channels))]
        return np.concatenate(parts, axis=0)
    pad = (width - scaled.shape[1]) // 2
    parts = [_noise(rng, (height, pad, channels)), scaled, _noise(rng, (height, pad, channels))]
    return np.concatenate(parts, axis=1)
