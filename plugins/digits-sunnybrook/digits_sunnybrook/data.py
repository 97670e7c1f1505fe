"""The Sunnybrook Cardiac Data as a dataset type: short-axis MR slices and left-ventricle masks.

The layout read is the one the Sunnybrook LV Segmentation Challenge distributes::

    <image_folder>/<case>/IM-<series>-<NNNN>.dcm
    <contour_folder>/<case>/contours-manual/IRCCI-expert/IM-0001-<NNNN>-icontour-manual.txt

Every inner-contour ("icontour") file is one entry: the image of the same case with the
same slice number ``NNNN``, labelled with a mask of the area the contour encloses. Case
folder names match when equal or when they differ only by the zero padding of numbers
(the challenge ships ``SC-HF-I-1`` images with ``SC-HF-I-01`` contours).
"""

from __future__ import annotations

import io
import math
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pydicom
from django.core.exceptions import ValidationError
from PIL import Image, ImageDraw

from apps.core.plugins import TRAIN, VAL, ConfinedReader, DataIngestion, EntryError, confine

CONTOUR_NAME = re.compile(r"^IM-0001-(\d+)-icontour-manual\.txt$")
IMAGE_NAME = re.compile(r"^IM-(\d+)-(\d+)\.dcm$", re.IGNORECASE)
CONTOUR_DIRS = ("contours-manual", "IRCCI-expert")
#: A contour file is a few hundred short lines; anything far larger is not one.
MAX_CONTOUR_BYTES = 1 << 20
#: A DICOM file larger than this is refused before it is read into memory.
MAX_DICOM_BYTES = 512 * 2**20

GRAYSCALE, RGB = "L", "RGB"
LABEL_NAMES = ["background", "left ventricle"]
PALETTE = [(0, 0, 0), (230, 25, 75)]


def case_key(name: str) -> str:
    """A case folder name without the zero padding of its numbers: ``SC-HF-I-01`` → ``SC-HF-I-1``."""
    return "-".join(str(int(part)) if part.isdigit() else part for part in name.split("-"))


@dataclass(frozen=True)
class Slice:
    """One entry: paths relative to the image and contour folders (POSIX separators)."""

    case: str
    image: str
    contour: str

    def __str__(self) -> str:
        return f"{self.contour} on {self.image}"


# --- reading and encoding ------------------------------------------------------------------
def read_dicom_image(source: str | os.PathLike | IO[bytes], name: str) -> np.ndarray:
    """The pixels of a single-frame DICOM image as ``uint8``: (H, W), or (H, W, 3) for colour.

    Scaling is per image min-max: the lowest stored value becomes 0, the highest 255,
    linearly in between (a constant image becomes all 0). The modality rescale is linear,
    so it cannot change the result and is not applied. MONOCHROME1 images (where low
    values are bright) are inverted so that bright means strong signal, as in MONOCHROME2.
    Raises ``EntryError`` naming ``name`` for anything that is not such an image.
    """
    try:
        dataset = pydicom.dcmread(source)
    except Exception as exc:
        raise EntryError(f"{name} is not a readable DICOM file ({exc})") from None
    if not any(k in dataset for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
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
        raise EntryError(f"{name}: the pixel data cannot be decoded ({exc})") from None
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)) or pixels.size == 0:
        raise EntryError(f"{name} has pixel data of shape {pixels.shape}, not one image")
    image = _scale_to_uint8(pixels, name)
    if dataset.get("PhotometricInterpretation") == "MONOCHROME1":
        image = 255 - image
    return image


def _scale_to_uint8(pixels: np.ndarray, name: str) -> np.ndarray:
    values = pixels.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise EntryError(f"{name} has pixel values that are not finite numbers")
    if high == low:
        return np.zeros(pixels.shape, np.uint8)
    return np.rint((values - low) * 255.0 / (high - low)).astype(np.uint8)


def convert_channels(image: np.ndarray, mode: str) -> np.ndarray:
    """HWC features from an (H, W) or (H, W, 3) uint8 image: 1 channel for ``"L"``, 3 for ``"RGB"``.

    Colour becomes gray by Pillow's ITU-R 601-2 luma; gray becomes RGB by repeating it.
    """
    if mode == RGB:
        return image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3:
        image = np.asarray(Image.fromarray(image, "RGB").convert("L"))
    return np.ascontiguousarray(image[:, :, None])


def read_contour(path: str | os.PathLike, name: str) -> np.ndarray:
    """The points of a contour file as float64 (N, 2) ``(x, y)``; one ``x y`` pair per line."""
    try:
        if os.path.getsize(path) > MAX_CONTOUR_BYTES:
            raise EntryError(f"{name} is larger than {MAX_CONTOUR_BYTES} bytes; not a contour")
        data = Path(path).read_bytes()
    except OSError as exc:
        raise EntryError(f"{name} cannot be read ({exc})") from None
    return parse_contour(data, name)


def parse_contour(data: bytes, name: str) -> np.ndarray:
    """``read_contour`` of a contour file's bytes."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise EntryError(f"{name} cannot be read ({exc})") from None
    points = []
    for number, line in enumerate(text.splitlines(), 1):
        values = line.split()
        if not values:
            continue
        if len(values) != 2:
            raise EntryError(
                f"{name}, line {number}: {len(values)} values where a point needs 2 (“x y”)"
            )
        try:
            x, y = float(values[0]), float(values[1])
        except ValueError:
            raise EntryError(
                f"{name}, line {number}: {line.strip()!r} is not two numbers"
            ) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise EntryError(f"{name}, line {number}: {line.strip()!r} is not two finite numbers")
        points.append((x, y))
    if len(points) < 3:
        raise EntryError(f"{name} has {len(points)} point(s); a contour needs at least 3")
    return np.array(points, dtype=np.float64)


def rasterise_contour(points: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    """The (H, W) uint8 mask of a contour: 1 on and inside the polygon, 0 elsewhere.

    ``points`` are ``(x, y)`` = (column, row) pixel coordinates, pixel centres at integers
    (the Sunnybrook convention). Vertices are rounded to the nearest pixel centre, then
    Pillow's ``ImageDraw.polygon`` fills the polygon and draws its outline: every pixel
    whose centre lies inside or on the polygon is set; along slanted edges the scan
    conversion may also set a pixel whose centre lies less than one pixel outside.
    """
    height, width = shape
    vertices = np.rint(points).astype(np.int64)
    outside = (vertices[:, 0] < 0) | (vertices[:, 0] >= width)
    outside |= (vertices[:, 1] < 0) | (vertices[:, 1] >= height)
    if outside.any():
        x, y = points[int(np.argmax(outside))]
        raise EntryError(f"{name}: point ({x:g}, {y:g}) lies outside the {width}×{height} image")
    xs, ys = vertices[:, 0], vertices[:, 1]
    if np.dot(xs, np.roll(ys, -1)) == np.dot(ys, np.roll(xs, -1)):  # shoelace area is zero
        raise EntryError(f"{name}: the contour encloses no area")
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).polygon([tuple(v) for v in vertices.tolist()], fill=1, outline=1)
    return np.array(canvas, dtype=np.uint8)


# --- the dataset type ------------------------------------------------------------------------
def _server_folder(path: str) -> Path:
    """``path`` confined to the data roots again: the job must not trust the options blindly."""
    try:
        folder = confine(path)
    except ValidationError as exc:
        raise ValueError(exc.messages[0]) from None
    if not folder.is_dir():
        raise ValueError(f"Folder {path} does not exist on the server.")
    return folder


def _confined(path: Path, name: str) -> EntryError | None:
    """An error when ``path`` (e.g. through a symbolic link) leads outside the data roots."""
    try:
        confine(path)
    except ValidationError:
        return EntryError(f"{name} leads outside the folders this server may read from")
    return None


def _read(reader: ConfinedReader, path: Path, name: str) -> bytes:
    """The bytes of ``path`` through ``reader``; an ``EntryError`` naming ``name`` otherwise."""
    try:
        return reader.read(path)
    except ValidationError as exc:
        message = " ".join(exc.messages)
        if exc.code == "outside_roots":
            message = "leads outside the folders this server may read from"
        raise EntryError(f"{name}: {message}") from None
    except OSError as exc:
        raise EntryError(f"{name} cannot be read ({exc.strerror or exc})") from None


def _find_contours(root: Path) -> list[tuple[str, str, int]]:
    """``(path relative to root, case, slice number)`` of every inner-contour file, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        folder = Path(dirpath)
        relative = folder.relative_to(root)
        if len(relative.parts) < 3 or relative.parts[-2:] != CONTOUR_DIRS:
            continue
        for filename in filenames:
            match = CONTOUR_NAME.match(filename)
            if match:
                path = (relative / filename).as_posix()
                found.append((path, relative.parts[-3], int(match.group(1))))
    return sorted(found)


class _ImageIndex:
    """The DICOM files of each case folder, listed on first need."""

    def __init__(self, root: Path):
        self.root = root
        self.case_dirs = {
            case_key(entry.name): entry.name
            for entry in sorted(os.scandir(root), key=lambda e: e.name)
            if entry.is_dir()
        }
        self._slices: dict[str, dict[int, list[tuple[int, str]]]] = {}

    def candidates(self, case: str, number: int) -> list[tuple[int, str]]:
        """``(series, path relative to root)`` of the images of ``case`` with slice ``number``."""
        key = case_key(case)
        if key not in self._slices:
            slices: dict[int, list[tuple[int, str]]] = {}
            folder = self.case_dirs.get(key)
            if folder is not None:
                for entry in sorted(os.scandir(self.root / folder), key=lambda e: e.name):
                    match = IMAGE_NAME.match(entry.name)
                    if match and entry.is_file():
                        slices.setdefault(int(match.group(2)), []).append(
                            (int(match.group(1)), f"{folder}/{entry.name}")
                        )
            self._slices[key] = slices
        return self._slices[key].get(number, [])


class SunnybrookData(DataIngestion):
    """Short-axis cine MR slices with the expert's inner (endocardial) contour of the LV.

    Options (the cleaned data of ``SunnybrookForm``): ``image_folder``, ``contour_folder``,
    ``channel_conversion`` (``"L"`` or ``"RGB"``), ``val_percent`` (0–50), ``seed`` and
    ``series`` (``{case: series number}`` where a case folder holds several series).

    Features: uint8 (H, W, 1) or (H, W, 3), scaled per image (see ``read_dicom_image``).
    Labels: (H, W) uint8 masks, 0 background, 1 left ventricle (see ``rasterise_contour``).
    Stored as NumPy shards, with the mean image of the train stage.
    The train/validation split draws ``val_percent`` % of the contours (rounded) for
    validation with a shuffle seeded by ``seed``: the same folders and options always give
    the same split. The test stage is empty.
    """

    category = "Images"

    def __init__(self, is_inference_db: bool = False, **kwargs: Any):
        super().__init__(is_inference_db=is_inference_db, **kwargs)
        self._split: dict[str, list[Slice | EntryError]] | None = None
        self._readers: tuple[int, ConfinedReader, ConfinedReader] | None = None

    @classmethod
    def get_id(cls) -> str:
        return "image-sunnybrook"

    @classmethod
    def get_title(cls) -> str:
        return "Sunnybrook LV segmentation"

    @classmethod
    def get_task(cls) -> str:
        return "segmentation"

    @classmethod
    def get_dataset_form(cls):
        from digits_sunnybrook.forms import SunnybrookForm

        return SunnybrookForm

    @classmethod
    def get_dataset_template(cls, form):
        return "digits_sunnybrook/dataset_template.html", {"form": form}

    @classmethod
    def get_inference_form(cls):
        from digits_sunnybrook.forms import SunnybrookInferenceForm

        return SunnybrookInferenceForm

    @classmethod
    def get_inference_template(cls, form):
        return "digits_sunnybrook/inference_template.html", {"form": form}

    def wants_mean_image(self) -> bool:
        return True  # as DIGITS: networks may subtract it

    def get_label_names(self) -> list[str]:
        return list(LABEL_NAMES)

    def get_palette(self) -> list[tuple[int, int, int]]:
        return list(PALETTE)

    # --- itemizing -----------------------------------------------------------------------
    def itemize_entries(self, stage: str) -> list[Slice | EntryError]:
        if self._split is None:
            self._split = self._make_split()
        return list(self._split.get(stage, []))

    def _make_split(self) -> dict[str, list[Slice | EntryError]]:
        entries = self._all_entries()
        order = list(range(len(entries)))
        random.Random(int(self.userdata.get("seed") or 0)).shuffle(order)
        percent = float(self.userdata.get("val_percent") or 0)
        n_val = math.floor(len(entries) * percent / 100 + 0.5)
        # Each stage keeps the folders' order, so that entry numbers follow case and slice.
        return {
            VAL: [entries[i] for i in sorted(order[:n_val])],
            TRAIN: [entries[i] for i in sorted(order[n_val:])],
        }

    def _all_entries(self) -> list[Slice | EntryError]:
        image_root = _server_folder(self.userdata["image_folder"])
        contour_root = _server_folder(self.userdata["contour_folder"])
        images = _ImageIndex(image_root)
        series = {case_key(c): int(s) for c, s in (self.userdata.get("series") or {}).items()}
        entries: list[Slice | EntryError] = []
        for contour, case, number in _find_contours(contour_root):
            candidates = images.candidates(case, number)
            wanted = series.get(case_key(case))
            if wanted is not None:
                candidates = [c for c in candidates if c[0] == wanted]
            if len(candidates) == 1:
                image = candidates[0][1]
                problem = _confined(contour_root / contour, contour) or _confined(
                    image_root / image, image
                )
                entries.append(problem or Slice(case=case, image=image, contour=contour))
            elif not candidates:
                in_series = "" if wanted is None else f" in series {wanted:04d}"
                entries.append(
                    EntryError(
                        f"{contour}: no image {case}/IM-*-{number:04d}.dcm{in_series} "
                        "in the image folder"
                    )
                )
            else:
                names = ", ".join(path for _, path in candidates)
                entries.append(
                    EntryError(
                        f"{contour}: several images match ({names}); "
                        f"set the series of case {case} in the dataset options"
                    )
                )
        return entries

    # --- encoding ------------------------------------------------------------------------
    def encode_entry(self, entry: Slice) -> tuple[np.ndarray, np.ndarray]:
        # Read through confined readers (one pair per process; the pool's processes are
        # forked): the files checked when the entries were listed may since have been
        # swapped for links out of the data roots, or for FIFOs that would block a read.
        if self._readers is None or self._readers[0] != os.getpid():
            self._readers = (
                os.getpid(), ConfinedReader(MAX_DICOM_BYTES), ConfinedReader(MAX_CONTOUR_BYTES)
            )  # fmt: skip
        _, images, contours = self._readers
        data = _read(images, Path(self.userdata["image_folder"]) / entry.image, entry.image)
        image = read_dicom_image(io.BytesIO(data), entry.image)
        features = convert_channels(image, self.userdata.get("channel_conversion") or GRAYSCALE)
        data = _read(contours, Path(self.userdata["contour_folder"]) / entry.contour, entry.contour)
        points = parse_contour(data, entry.contour)
        return features, rasterise_contour(points, image.shape[:2], entry.contour)
