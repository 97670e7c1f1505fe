"""The limits images from users are held to: dataset import and inference inputs alike.

Pillow's decompression-bomb protection stays on, with its warning made an error: an
image of more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (about 89 million) is refused
before its pixels are decoded. Only the formats a dataset may hold are tried.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

#: Pillow format plugins an image may be in (PPM covers PGM and PBM).
FORMATS = ("PNG", "JPEG", "BMP", "PPM", "TIFF")
#: An image file larger than this is refused before it is decoded.
MAX_FILE_BYTES = 256 * 2**20


def check_image(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of the image in ``data``; ``ValueError`` saying why it is refused.

    Reads the header and checks the file's structure (``verify``) without decoding the
    pixels, so it is cheap enough for a web request.
    """
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(
            f"The image has {len(data)} bytes, more than the {MAX_FILE_BYTES} allowed."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                size = image.size
                image.verify()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError(
                f"The image has more than the {Image.MAX_IMAGE_PIXELS} pixels allowed."
            ) from None
        except UnidentifiedImageError:
            raise ValueError(
                "Not an image in a supported format (png, jpg, bmp, ppm, pgm, tif)."
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ValueError(f"The image is corrupt or truncated ({exc}).") from None
    return size


def network_input(data: bytes, input_shape):
    """An image file (bytes) as a network's input: an (H, W, C) ``uint8`` array, converted
    to gray or RGB as C says and squashed to H × W. Checked by ``check_image`` first;
    ``ValueError`` (or Pillow's ``OSError``) when it is not an image within the limits."""
    import numpy as np

    height, width, channels = input_shape
    check_image(data)
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array.reshape(height, width, channels)
