"""Writing Sunnybrook-layout trees of real DICOM files, for tests and benchmarks.

``make_tree`` writes the layout with a bright rectangle (or a varying ellipse) per slice and
its inner contour; its keyword options add what a hospital export brings: compressed
transfer syntaxes, files without the 128-byte preamble, broken files, other matrix sizes.
``make_study`` is a ready mix of all of them. Every file is real DICOM, written by pydicom
(compressed by pydicom's own RLE encoder, the pylibjpeg-openjpeg JPEG 2000 encoder, or the
small JPEG Lossless encoder below, which pydicom lacks).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

RECTANGLE, ELLIPSE = "rectangle", "ellipse"
#: The transfer syntaxes ``write_dicom`` can compress to.
COMPRESSED = (RLELossless, JPEG2000Lossless, JPEGLosslessSV1)


def write_dicom(
    path: Path, pixels: np.ndarray, bits_stored: int = 12, *, syntax: str = ExplicitVRLittleEndian,
    preamble: bool = True, window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
) -> Path:  # fmt: skip
    """Save ``pixels`` (H, W) uint16 as a single-frame MONOCHROME2 MR image, in DICOM file format.

    ``syntax`` compresses the pixel data (``COMPRESSED``); ``preamble=False`` writes the
    data set alone, as older devices do: no 128-byte preamble, no ``DICM`` prefix, no file
    meta group, implicit VR little endian. ``window`` is ``(center, width)`` and ``rescale``
    ``(slope, intercept)``, written as Window Center/Width and Rescale Slope/Intercept.
    (openjpeg encodes JPEG 2000 only from about 64 × 64 pixels: its default resolutions.)
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.uint16)
    ds = _image_dataset(path, pixels, bits_stored)
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = (f"{v:g}" for v in window)
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = (f"{v:g}" for v in rescale)
        ds.RescaleType = "US"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not preamble:
        del ds.file_meta  # the data set alone, implicit VR little endian
        ds.save_as(path, implicit_vr=True, little_endian=True)
        return path
    if syntax == JPEGLosslessSV1:
        ds.PixelData = encapsulate([encode_jpeg_lossless(pixels, bits_stored)])
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    elif syntax != ExplicitVRLittleEndian:
        ds.compress(syntax)  # pydicom's RLE encoder; JPEG 2000 through pylibjpeg-openjpeg
    ds.save_as(path, enforce_file_format=True)
    return path


def _image_dataset(path: Path, pixels: np.ndarray, bits_stored: int) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.PatientID = path.parent.name
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    return ds


# --- JPEG Lossless (ITU T.81 process 14, selection value 1), which pydicom cannot encode ------
#: Huffman table of the difference categories 0–16: 0–15 take 5-bit codes, 16 a 6-bit one.
_HUFFMAN_BITS = [0, 0, 0, 0, 16, 1] + [0] * 10
_HUFFMAN_CODES = [(i, 5) for i in range(16)] + [(0b100000, 6)]


def encode_jpeg_lossless(pixels: np.ndarray, precision: int) -> bytes:
    """A JPEG Lossless SV1 codestream of an (H, W) unsigned image of ``precision`` bits.

    Predictor 1 (the pixel to the left; the pixel above in the first column, ``2**(P-1)``
    for the first pixel), one Huffman table, no restart intervals.
    """
    image = pixels.astype(np.int64)
    height, width = image.shape
    predicted = np.empty_like(image)
    predicted[:, 1:] = image[:, :-1]
    predicted[1:, 0] = image[:-1, 0]
    predicted[0, 0] = 1 << (precision - 1)
    differences = (image - predicted) % 65536
    differences[differences > 32768] -= 65536
    bits = _BitWriter()
    for value in differences.ravel().tolist():
        category = 16 if value == 32768 else abs(value).bit_length()
        bits.put(*_HUFFMAN_CODES[category])
        if 0 < category < 16:
            bits.put(value if value > 0 else value + (1 << category) - 1, category)
    frame = bytes([precision]) + height.to_bytes(2, "big") + width.to_bytes(2, "big")
    frame += bytes([1, 1, 0x11, 0])
    table = bytes([0x00, *_HUFFMAN_BITS, *range(17)])
    scan = bytes([1, 1, 0x00, 1, 0, 0])  # one component, table 0, predictor 1, Pt 0
    return (
        b"\xff\xd8" + _segment(0xC3, frame) + _segment(0xC4, table) + _segment(0xDA, scan)
        + bits.finish() + b"\xff\xd9"
    )  # fmt: skip


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


class _BitWriter:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.count = 0

    def put(self, value: int, length: int) -> None:
        self.acc = (self.acc << length) | (value & ((1 << length) - 1))
        self.count += length
        while self.count >= 8:
            self.count -= 8
            byte = (self.acc >> self.count) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0)  # byte stuffing
        self.acc &= (1 << self.count) - 1

    def finish(self) -> bytes:
        if self.count:
            self.put((1 << (8 - self.count)) - 1, 8 - self.count)  # pad with 1 bits
        return bytes(self.out)


# --- the layout ----------------------------------------------------------------------------
def write_contour(path: Path, points: Iterable[tuple[float, float]]) -> Path:
    """Write ``(x, y)`` points, one ``x y`` line each, as the Sunnybrook contour files have them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{x:.2f} {y:.2f}\n" for x, y in points))
    return path


def contour_path(root: Path, case: str, number: int) -> Path:
    name = f"IM-0001-{number:04d}-icontour-manual.txt"
    return root / case / "contours-manual" / "IRCCI-expert" / name


def image_path(root: Path, case: str, series: int, number: int) -> Path:
    return root / case / f"IM-{series:04d}-{number:04d}.dcm"


def padded_case(case: str) -> str:
    """The contour folder name of a case: numbers zero-padded (``SC-HF-I-1`` → ``SC-HF-I-01``)."""
    return "-".join(p.zfill(2) if p.isdigit() else p for p in case.split("-"))


def slice_rectangle(index: int, size: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``, inclusive pixel bounds of the LV drawn on slice ``index``."""
    x0 = size // 4 + index % 5
    y0 = size // 4 + (index * 3) % 7
    return x0, y0, x0 + size // 3, y0 + size // 4


def slice_ellipse(rng: np.random.Generator, size: int) -> tuple[float, float, float, float]:
    """``(cx, cy, rx, ry)`` of a ventricle: 8–22 % of the side in radius, well inside the image."""
    rx, ry = (size * rng.uniform(0.08, 0.22) for _ in range(2))
    cx = rng.uniform(rx + 2, size - rx - 3)
    cy = rng.uniform(ry + 2, size - ry - 3)
    return cx, cy, rx, ry


def ellipse_mask(ellipse: tuple[float, float, float, float], size: int) -> np.ndarray:
    """1 where the pixel centre lies inside the ellipse (what its contour should rasterise to)."""
    cx, cy, rx, ry = ellipse
    y, x = np.mgrid[0:size, 0:size]
    return (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1).astype(np.uint8)


def ellipse_points(ellipse: tuple[float, float, float, float], count: int = 48) -> list:
    cx, cy, rx, ry = ellipse
    angles = [2 * math.pi * i / count for i in range(count)]
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


@dataclass
class Tree:
    images: Path
    contours: Path
    #: ``(case, slice number)`` of every slice written with a contour, in file order.
    slices: list[tuple[str, int]] = field(default_factory=list)
    #: The ventricle mask drawn on each slice (pixel centres inside the shape), by slice.
    masks: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    #: The image file of each slice.
    files: dict[tuple[str, int], Path] = field(default_factory=dict)
    #: Slices whose image file was written broken (``broken=``), by slice.
    broken: list[tuple[str, int]] = field(default_factory=list)

    def case_of(self, relative_image: str) -> str:
        """The case (image folder name) of an image path relative to ``images``."""
        return relative_image.split("/")[0]


def make_tree(
    root: Path, cases: Iterable[str] = ("SC-HF-I-1", "SC-N-2"), slices: int = 6, size: int = 32,
    series: int = 4, seed: int = 0, *, shape: str = RECTANGLE, sizes: Mapping[str, int] | None = None,
    syntaxes: Mapping[tuple[str, int], str] | None = None,
    no_preamble: Iterable[tuple[str, int]] = (), broken: Iterable[tuple[str, int]] = (),
) -> Tree:  # fmt: skip
    """A Sunnybrook-layout tree below ``root``: ``images/`` and ``contours/``.

    Each case has ``slices`` 16-bit images (12 bits stored) of ``size`` × ``size`` pixels
    (``sizes`` gives some cases other sizes), numbered from 20: noise below 1200 with a
    bright ventricle (3000 and up), and an inner contour tracing it. The ventricle is a
    rectangle (``slice_rectangle``, traced by its corners, so its mask is exact) or, with
    ``shape="ellipse"``, an ellipse of random centre and radii per slice traced by 48
    points. Contour case folders are zero-padded (``SC-HF-I-01``) as in the challenge data.

    ``syntaxes`` compresses the images of some ``(case, number)`` slices, ``no_preamble``
    writes some without preamble and file meta, ``broken`` truncates some image files in
    their pixel data (their contours stay; the build reports them).
    """
    rng = np.random.default_rng(seed)
    tree = Tree(images=root / "images", contours=root / "contours")
    syntaxes, no_preamble, broken = dict(syntaxes or {}), set(no_preamble), set(broken)
    for case in cases:
        side = (sizes or {}).get(case, size)
        for index in range(slices):
            number = 20 + index
            key = (case, number)
            pixels = rng.integers(0, 1200, (side, side), dtype=np.uint16)
            if shape == ELLIPSE:
                ellipse = slice_ellipse(rng, side)
                mask = ellipse_mask(ellipse, side)
                points = ellipse_points(ellipse)
            else:
                x0, y0, x1, y1 = slice_rectangle(index, side)
                mask = np.zeros((side, side), np.uint8)
                mask[y0 : y1 + 1, x0 : x1 + 1] = 1
                points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
            pixels[mask == 1] = 3000 + index
            path = image_path(tree.images, case, series, number)
            write_dicom(
                path, pixels, syntax=syntaxes.get(key, ExplicitVRLittleEndian),
                preamble=key not in no_preamble,
            )  # fmt: skip
            if key in broken:
                data = path.read_bytes()
                path.write_bytes(data[: len(data) - side * side])  # the pixels cut in half
                tree.broken.append(key)
            write_contour(contour_path(tree.contours, padded_case(case), number), points)
            tree.slices.append(key)
            tree.masks[key] = mask
            tree.files[key] = path
    return tree


def make_study(root: Path, cases: int = 6, slices: int = 6, size: int = 48, seed: int = 0) -> Tree:
    """What a hospital export looks like: ``cases`` cases of ``slices`` varying ellipses each,
    the last case at 1.5 × the matrix size, one RLE, one JPEG 2000 and one JPEG Lossless
    image and one without preamble in the first case, one broken image in the second."""
    groups = ("SC-HF-I", "SC-HF-NI", "SC-HYP", "SC-N")
    names = [f"{groups[i % len(groups)]}-{i + 1}" for i in range(cases)]
    first, second = names[0], names[min(1, cases - 1)]
    return make_tree(
        root, cases=names, slices=slices, size=size, seed=seed, shape=ELLIPSE,
        sizes={names[-1]: size * 3 // 2},
        syntaxes={(first, 20): RLELossless, (first, 21): JPEG2000Lossless,
                  (first, 22): JPEGLosslessSV1},
        no_preamble=[(first, 23)], broken=[(second, 21)],
    )  # fmt: skip


def rotated_ellipse_points(
    cx: float, cy: float, rx: float, ry: float, angle: float, points: int = 48
):
    """``points`` ``(x, y)`` vertices of an ellipse rotated by ``angle`` radians."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    cos, sin = np.cos(angle), np.sin(angle)
    return list(zip(cx + x * cos - y * sin, cy + x * sin + y * cos, strict=True))


def make_ellipse_tree(
    root: Path, cases: int = 6, slices: int = 10, size: int = 64, series: int = 4, seed: int = 0
) -> Tree:
    """A Sunnybrook-layout tree of ``cases`` cases × ``slices`` slices for segmentation
    training: 12-bit images (0..4095) of ``size`` × ``size`` pixels, a bright ellipse (the
    "ventricle") of varying centre, radii and angle in a darker ring (the "myocardium") on
    noise, and the ellipse as the inner contour. The mask is the contour's rasterisation
    (``digits_sunnybrook.data.rasterise_contour``), which also decides the bright pixels, so
    image and label agree exactly.
    """
    from digits_sunnybrook.data import rasterise_contour

    rng = np.random.default_rng(seed)
    tree = Tree(images=root / "images", contours=root / "contours")
    yy, xx = np.mgrid[0:size, 0:size]
    for case_index in range(cases):
        case = f"SC-HF-I-{case_index + 1}"
        padded = f"SC-HF-I-{case_index + 1:02d}"
        for index in range(slices):
            number = 20 + index
            rx, ry = rng.uniform(0.12, 0.22, 2) * size
            cx, cy = rng.uniform(0.35, 0.65, 2) * size
            points = rotated_ellipse_points(cx, cy, rx, ry, rng.uniform(0, np.pi))
            mask = rasterise_contour(np.array(points), (size, size), "synthetic")
            ring = ((xx - cx) / (rx + 5)) ** 2 + ((yy - cy) / (ry + 5)) ** 2 <= 1
            pixels = rng.normal(700, 250, (size, size))
            pixels[ring] = rng.normal(1500, 250, int(ring.sum()))
            pixels[mask == 1] = rng.normal(3000, 300, int(mask.sum()))
            pixels = np.clip(pixels, 0, 4095).astype(np.uint16)
            write_dicom(image_path(tree.images, case, series, number), pixels)
            write_contour(contour_path(tree.contours, padded, number), points)
            tree.slices.append((case, number))
    return tree
