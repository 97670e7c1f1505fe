"""Writing Sunnybrook-layout trees of real DICOM files, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid


def write_dicom(path: Path, pixels: np.ndarray, bits_stored: int = 12) -> Path:
    """Save ``pixels`` (H, W) uint16 as a single-frame MONOCHROME2 MR image, in DICOM file format."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint16)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


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


def slice_rectangle(index: int, size: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``, inclusive pixel bounds of the LV drawn on slice ``index``."""
    x0 = size // 4 + index % 5
    y0 = size // 4 + (index * 3) % 7
    return x0, y0, x0 + size // 3, y0 + size // 4


@dataclass
class Tree:
    images: Path
    contours: Path
    #: ``(case, slice number)`` of every slice written with a contour, in file order.
    slices: list[tuple[str, int]] = field(default_factory=list)


def make_tree(
    root: Path, cases: Iterable[str] = ("SC-HF-I-1", "SC-N-2"), slices: int = 6, size: int = 32,
    series: int = 4, seed: int = 0,
) -> Tree:  # fmt: skip
    """A Sunnybrook-layout tree below ``root``: ``images/`` and ``contours/``.

    Each case has ``slices`` 16-bit images (12 bits stored) of ``size`` × ``size`` pixels,
    noise with a bright rectangle, and an inner contour tracing that rectangle
    (``slice_rectangle``) with corner points, so its mask is known exactly. Contour case
    folders are zero-padded (``SC-HF-I-01``) as in the challenge data.
    """
    rng = np.random.default_rng(seed)
    tree = Tree(images=root / "images", contours=root / "contours")
    for case in cases:
        padded = "-".join(p.zfill(2) if p.isdigit() else p for p in case.split("-"))
        for index in range(slices):
            number = 20 + index
            pixels = rng.integers(0, 1200, (size, size), dtype=np.uint16)
            x0, y0, x1, y1 = slice_rectangle(index, size)
            pixels[y0 : y1 + 1, x0 : x1 + 1] = 3000 + index
            write_dicom(image_path(tree.images, case, series, number), pixels)
            corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
            write_contour(contour_path(tree.contours, padded, number), corners)
            tree.slices.append((case, number))
    return tree


def ellipse_points(cx: float, cy: float, rx: float, ry: float, angle: float, points: int = 48):
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
            points = ellipse_points(cx, cy, rx, ry, rng.uniform(0, np.pi))
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
