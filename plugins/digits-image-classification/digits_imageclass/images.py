"""Reading one image file into an HWC uint8 array, safely.

Pillow's decompression-bomb protection stays on: an image with more pixels than
``PIL.Image.MAX_IMAGE_PIXELS`` (about 89 million by default) is refused — the
``DecompressionBombWarning`` Pillow would merely print is turned into an error —
before its pixels are decoded. Only the formats a dataset may hold are tried.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

from apps.core.images import FORMATS
from apps.core.plugins import EntryError

#: File name extensions of the images a class folder may hold (lower case).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff"})
#: Pillow format plugins tried when opening: the platform's, shared with inference inputs.
PILLOW_FORMATS = FORMATS
GRAYSCALE, COLOR = "grayscale", "color"
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def is_image_name(name: str) -> bool:
    """Whether ``name`` has one of the image extensions (case-insensitive)."""
    stem, dot, extension = name.rpartition(".")
    return bool(stem.lstrip(".")) and f".{extension.lower()}" in IMAGE_EXTENSIONS


def _to_8bit(image: Image.Image, image_type: str) -> Image.Image:
    """``image`` in mode ``L`` (grayscale) or ``RGB`` (color)."""
    target = "L" if image_type == GRAYSCALE else "RGB"
    if image.mode in SIXTEEN_BIT_MODES:
        # 16-bit samples scaled to 8 bits over the full range: 65535 → 255.
        wide = np.asarray(image).astype(np.float64)
        gray = Image.fromarray(np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8))
        return gray if target == "L" else gray.convert("RGB")
    if image.mode == "F":
        raise ValueError("floating-point images are not supported")
    if image.mode == target:
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # Pillow asks for this before dropping the palette
    return image.convert(target)


def to_array(image: Image.Image) -> np.ndarray:
    """An ``L`` or ``RGB`` image as an HWC uint8 array (1 or 3 channels)."""
    array = np.asarray(image)
    return array[:, :, None] if array.ndim == 2 else array


def load_image(source: str | Path | IO[bytes], name: str, image_type: str = COLOR) -> np.ndarray:
    """The pixels of one image file: ``(H, W, 1)`` for grayscale, ``(H, W, 3)`` RGB; uint8.

    ``source`` is a path or a seekable binary file; ``name`` is how error messages
    call it. 16-bit images are scaled to 8 bits; of a multi-frame file the first
    frame is read. Raises ``EntryError`` naming ``name`` for a file that is not an
    image in one of the supported formats, is corrupt or truncated, or has more
    pixels than the decompression-bomb limit allows.
    """
    return to_array(open_image(source, name, image_type))


def open_image(source: str | Path | IO[bytes], name: str, image_type: str = COLOR) -> Image.Image:
    """``load_image``, as a decoded Pillow image in mode ``L`` or ``RGB``.

    What the dataset job uses: resizing the Pillow image and converting to an array
    once afterwards saves two array round trips per image.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(source, formats=PILLOW_FORMATS) as image:
                image.load()
                return _to_8bit(image, image_type)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise EntryError(
                f"{name}: refused by the decompression-bomb protection "
                f"(more than {Image.MAX_IMAGE_PIXELS} pixels; {exc})"
            ) from None
        except UnidentifiedImageError:
            raise EntryError(
                f"{name} is not an image in a supported format (png, jpg, bmp, ppm, pgm, tif)"
            ) from None
        except FileNotFoundError:
            raise EntryError(f"{name}: no such file") from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
            raise EntryError(f"{name} is corrupt or truncated ({exc})") from None
