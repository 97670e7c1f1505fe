"""Bringing series of other matrix sizes to the dataset's size: the image and its mask alike.

Modes (``width`` × ``height`` the target):

- ``squash``: scale to the target, ignoring the aspect ratio;
- ``crop``: scale (keeping the aspect ratio) until the image covers the target, then cut
  the centre (DIGITS' *crop*);
- ``pad``: no scaling (the pixel spacing is kept): cut the centre where the image is
  larger, add zeros (background) around it where it is smaller.

Images are resampled bilinearly in floating point and rounded back to their dtype; masks
with the nearest neighbour, so they keep their class indices.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SQUASH, CROP, PAD = "squash", "crop", "pad"
RESIZE_MODES = (SQUASH, CROP, PAD)


def fit(image: np.ndarray, mask: np.ndarray, width: int, height: int, mode: str):
    """``(image, mask)`` brought to ``height`` × ``width`` by ``mode``; unchanged if already so."""
    rows, columns = mask.shape
    if (rows, columns) == (height, width):
        return image, mask
    if mode == PAD:
        return _pad_or_cut(image, height, width), _pad_or_cut(mask, height, width)
    if mode == SQUASH:
        return _resample(image, width, height), _nearest(mask, width, height)
    scale = max(width / columns, height / rows)
    scaled_w, scaled_h = max(width, round(columns * scale)), max(height, round(rows * scale))
    image, mask = _resample(image, scaled_w, scaled_h), _nearest(mask, scaled_w, scaled_h)
    return _pad_or_cut(image, height, width), _pad_or_cut(mask, height, width)


def _resample(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resampling of each channel of an integer image, rounded back to its dtype."""
    planes = image if image.ndim == 3 else image[:, :, None]
    info = np.iinfo(image.dtype)
    out = np.empty((height, width, planes.shape[2]), image.dtype)
    for channel in range(planes.shape[2]):
        plane = Image.fromarray(planes[:, :, channel].astype(np.float32), "F")
        resized = np.asarray(plane.resize((width, height), Image.Resampling.BILINEAR))
        out[:, :, channel] = np.clip(np.rint(resized), info.min, info.max)
    return out if image.ndim == 3 else out[:, :, 0]


def _nearest(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask, "L").resize((width, height), Image.Resampling.NEAREST))


def _pad_or_cut(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centre ``height`` × ``width`` of ``array``, zero-padded where it is smaller."""
    out = np.zeros((height, width, *array.shape[2:]), array.dtype)
    rows, columns = array.shape[:2]
    src_y, dst_y, span_y = _centre(rows, height)
    src_x, dst_x, span_x = _centre(columns, width)
    out[dst_y : dst_y + span_y, dst_x : dst_x + span_x] = array[
        src_y : src_y + span_y, src_x : src_x + span_x
    ]
    return out


def _centre(size: int, target: int) -> tuple[int, int, int]:
    """``(source start, target start, length)`` of the centred overlap of two extents."""
    if size >= target:
        return (size - target) // 2, 0, target
    return 0, (target - size) // 2, size
