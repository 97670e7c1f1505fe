"""Reading one DICOM image and mapping its values to stored intensities.

Compressed pixel data (JPEG Lossless, JPEG-LS, JPEG 2000, RLE) is decoded by pydicom's
pixel-data plugins: pylibjpeg with pylibjpeg-libjpeg, -openjpeg and -rle, dependencies of
this package. A file without the 128-byte preamble and ``DICM`` prefix (older devices and
some exports write the data set alone) is read again with ``force=True``, and kept only if
it parses into an image: rows, columns and pixel data.

Intensities (``Intensity``): the stored values go through the modality LUT (Rescale
Slope/Intercept or a Modality LUT Sequence, ``apply_modality_lut``), then one of

- ``minmax``: per image, the lowest value becomes 0 and the highest the top of the
  output range (the default; a constant image becomes all 0);
- ``window``: the file's own VOI LUT Sequence or Window Center/Width (the first of
  several; ``apply_voi_lut``), scaled from its output range; files without either are
  scaled ``minmax``;
- ``fixed``: a window given in the options (center, width; DICOM's LINEAR function);
- ``percentile``: values clipped to the ``low``/``high`` percentiles of the image, then
  scaled as ``minmax``;
- ``raw``: the modality values as they are (16-bit output only; values outside
  0–65535 are an error).

The output is ``uint8`` (0–255) or, with ``depth=16``, ``uint16`` (0–65535).
MONOCHROME1 images (low values bright) are inverted after the mapping (not in ``raw``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from apps.core.plugins import EntryError

if TYPE_CHECKING:
    import pydicom
    from pydicom.uid import UID

# pydicom is imported where a file is read, not with this module: the plugin's hooks run
# in every platform process (web, worker, management commands), most of which read none.

MINMAX, WINDOW, FIXED, PERCENTILE, RAW = "minmax", "window", "fixed", "percentile", "raw"
INTENSITIES = (MINMAX, WINDOW, FIXED, PERCENTILE, RAW)
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_EXTREMES = np.array([-1e300, 1e300])


@dataclass(frozen=True)
class Intensity:
    """How stored values become features (see the module's docstring)."""

    mode: str = MINMAX
    depth: int = 8
    center: float | None = None
    width: float | None = None
    low: float = 0.5
    high: float = 99.5

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Intensity:
        def number(name, default):
            value = options.get(name)
            return default if value in (None, "") else float(value)

        return cls(
            mode=options.get("intensity") or MINMAX,
            depth=int(options.get("bit_depth") or 8),
            center=number("window_center", None),
            width=number("window_width", None),
            low=number("percentile_low", 0.5),
            high=number("percentile_high", 99.5),
        )

    @property
    def top(self) -> int:
        return 65535 if self.depth == 16 else 255

    @property
    def dtype(self) -> type:
        return np.uint16 if self.depth == 16 else np.uint8


def parse_dicom(source: str | os.PathLike | IO[bytes], name: str) -> pydicom.Dataset:
    """The data set of a DICOM file, with or without preamble; ``EntryError`` naming ``name``."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(source)
    except InvalidDicomError as exc:
        first = exc
    except Exception as exc:
        raise EntryError(f"{name} is not a readable DICOM file ({exc})") from None
    # No preamble or 'DICM' prefix: a bare data set if it parses into an image.
    try:
        if hasattr(source, "seek"):
            source.seek(0)
        dataset = pydicom.dcmread(source, force=True)
        if not ("Rows" in dataset and "Columns" in dataset and _has_pixels(dataset)):
            raise InvalidDicomError("no image attributes")
        implicit, little = dataset.original_encoding
        dataset.file_meta = getattr(dataset, "file_meta", None) or pydicom.dataset.FileMetaDataset()
        if "TransferSyntaxUID" not in dataset.file_meta:
            dataset.file_meta.TransferSyntaxUID = _syntax(implicit, little)
        return dataset
    except Exception:
        raise EntryError(f"{name} is not a readable DICOM file ({first})") from None


def _has_pixels(dataset) -> bool:
    return any(k in dataset for k in PIXEL_KEYWORDS)


def _syntax(implicit: bool, little: bool) -> UID:
    import pydicom.uid

    if implicit:
        return pydicom.uid.ImplicitVRLittleEndian
    return pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian


def decode_pixels(dataset, name: str) -> np.ndarray:
    """The single frame of ``dataset`` as an array, (H, W) or (H, W, 3)."""
    if not _has_pixels(dataset):
        raise EntryError(f"{name} has no pixel data (a DICOM file without an image)")
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        frames = int(dataset.get("NumberOfFrames") or 1)
    except Exception as exc:
        raise EntryError(f"{name} has no valid image size ({exc})") from None
    if frames != 1:
        raise EntryError(f"{name} holds {frames} frames; one image per file is expected")
    limit = Image.MAX_IMAGE_PIXELS
    if limit and rows * columns > 2 * limit:  # the limit at which Pillow refuses a file, too
        raise EntryError(f"{name} is {columns}×{rows} pixels, more than this server decodes")
    try:
        pixels = np.asarray(dataset.pixel_array)
    except Exception as exc:
        syntax = dataset.file_meta.get("TransferSyntaxUID")
        encoded = f" ({syntax.name})" if syntax is not None and syntax.is_compressed else ""
        raise EntryError(f"{name}: the pixel data{encoded} cannot be decoded ({exc})") from None
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)) or pixels.size == 0:
        raise EntryError(f"{name} has pixel data of shape {pixels.shape}, not one image")
    return pixels


def read_dicom_image(
    source: str | os.PathLike | IO[bytes], name: str, intensity: Intensity | None = None
) -> np.ndarray:
    """The pixels of a single-frame DICOM image, (H, W) or (H, W, 3) for colour, mapped
    by ``intensity`` (per image min-max to ``uint8`` by default).

    Raises ``EntryError`` naming ``name`` for anything that is not such an image.
    """
    from pydicom.pixels import apply_modality_lut

    intensity = intensity or Intensity()
    dataset = parse_dicom(source, name)
    pixels = decode_pixels(dataset, name)
    monochrome = pixels.ndim == 2
    try:
        values = apply_modality_lut(pixels, dataset) if monochrome else pixels
        image = map_intensity(values, dataset if monochrome else None, intensity, name)
    except EntryError:
        raise
    except Exception as exc:
        raise EntryError(f"{name}: the intensities cannot be mapped ({exc})") from None
    if dataset.get("PhotometricInterpretation") == "MONOCHROME1" and intensity.mode != RAW:
        image = intensity.top - image
    return image


def map_intensity(values: np.ndarray, dataset, intensity: Intensity, name: str) -> np.ndarray:
    """Modality values → ``intensity.dtype``; ``dataset`` None for colour (no VOI LUT)."""
    values = np.asarray(values, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise EntryError(f"{name} has pixel values that are not finite numbers")
    mode = intensity.mode
    if mode == RAW:
        if low < 0 or high > 65535:
            raise EntryError(
                f"{name} has values from {low:g} to {high:g}, outside the 0–65535 of "
                "16-bit features; choose another intensity mapping"
            )
        return np.rint(values).astype(np.uint16)
    if mode == WINDOW and dataset is not None and _has_voi(dataset):
        return _window_from_file(values, dataset, intensity)
    if mode == FIXED:
        return _linear_window(values, intensity.center, intensity.width, intensity)
    if mode == PERCENTILE:
        low, high = (float(v) for v in np.percentile(values, [intensity.low, intensity.high]))
        values = np.clip(values, low, high)
    return _scale(values, low, high, intensity)


def _has_voi(dataset) -> bool:
    return bool(dataset.get("VOILUTSequence")) or "WindowCenter" in dataset


def _scale(values: np.ndarray, low: float, high: float, intensity: Intensity) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, intensity.dtype)
    scaled = (np.clip(values, low, high) - low) * float(intensity.top) / (high - low)
    return np.rint(scaled).astype(intensity.dtype)


def _linear_window(values: np.ndarray, center: float, width: float, intensity: Intensity):
    """DICOM's LINEAR window function (PS3.3 C.11.2.1.2.1) onto the output range."""
    center, width = center - 0.5, width - 1
    if width <= 0:  # a width of 1: a threshold at the center
        return np.where(values > center, intensity.top, 0).astype(intensity.dtype)
    scaled = ((values - center) / width + 0.5) * intensity.top
    return np.rint(np.clip(scaled, 0, intensity.top)).astype(intensity.dtype)


def _window_from_file(values: np.ndarray, dataset, intensity: Intensity) -> np.ndarray:
    """The file's VOI LUT or window (pydicom), scaled from that function's output range."""
    from pydicom.pixels import apply_voi_lut, apply_windowing

    if dataset.get("VOILUTSequence"):  # a table indexed by (whole) modality values
        mapped = apply_voi_lut(np.rint(values).astype(np.int64), dataset, index=0)
        bits = int(dataset.VOILUTSequence[0].LUTDescriptor[2])
        low, high = 0.0, float(2**bits - 1)
    else:
        mapped = apply_voi_lut(values, dataset, index=0)
        low, high = (float(v) for v in apply_windowing(_EXTREMES.copy(), dataset, index=0))
    return _scale(np.asarray(mapped, dtype=np.float64), low, high, intensity)


def convert_channels(image: np.ndarray, mode: str) -> np.ndarray:
    """HWC features from an (H, W) or (H, W, 3) image: 1 channel for ``"L"``, 3 for ``"RGB"``.

    Colour becomes gray by the ITU-R 601-2 luma (Pillow's, for 8-bit images); gray
    becomes RGB by repeating it.
    """
    if mode == "RGB":
        return image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3:
        if image.dtype == np.uint8:
            image = np.asarray(Image.fromarray(image, "RGB").convert("L"))
        else:
            luma = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
            image = np.rint(luma).astype(image.dtype)
    return np.ascontiguousarray(image[:, :, None])
