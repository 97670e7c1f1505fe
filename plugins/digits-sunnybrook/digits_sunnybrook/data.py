"""The Sunnybrook Cardiac Data as a dataset type: short-axis MR slices and left-ventricle masks.

The layout read is the one the Sunnybrook LV Segmentation Challenge distributes::

    <image_folder>/<case>/IM-<series>-<NNNN>.dcm
    <contour_folder>/<case>/contours-manual/IRCCI-expert/IM-0001-<NNNN>-icontour-manual.txt

Every inner-contour ("icontour") file is one entry: the image of the same case with the
same slice number ``NNNN``, labelled with a mask of the area the contour encloses. Case
folder names match when equal or when they differ only by the zero padding of numbers
(the challenge ships ``SC-HF-I-1`` images with ``SC-HF-I-01`` contours).

The folders are server folders, or the two folders found in an uploaded zip or tar archive
(``source="archive"``), extracted in the job process after every member was checked
(``apps.core.archives``). Stages are drawn by case (patient), never by slice
(``split_cases``). Reading and intensities: ``digits_sunnybrook.dicom``; other matrix
sizes: ``digits_sunnybrook.resize``.
"""

from __future__ import annotations

import atexit
import io
import math
import os
import random
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from django.core.exceptions import ValidationError
from PIL import Image, ImageDraw

from apps.core.archives import Limits, extract_archive
from apps.core.plugins import (
    INFERENCE,
    STAGES,
    TEST,
    TRAIN,
    VAL,
    ConfinedReader,
    DataIngestion,
    DatasetRecord,
    EntryError,
    confine,
)
from apps.core.storage import ArtifactNotFound, get_store
from digits_sunnybrook.dicom import Intensity, convert_channels, read_dicom_image
from digits_sunnybrook.resize import SQUASH, fit

__all__ = [
    "GRAYSCALE", "RGB", "Slice", "SunnybrookData", "case_key", "convert_channels",
    "parse_contour", "rasterise_contour", "read_contour", "read_dicom_image", "split_cases",
]  # fmt: skip

CONTOUR_NAME = re.compile(r"^IM-0001-(\d+)-icontour-manual\.txt$")
IMAGE_NAME = re.compile(r"^IM-(\d+)-(\d+)\.dcm$", re.IGNORECASE)
CONTOUR_DIRS = ("contours-manual", "IRCCI-expert")
#: A contour file is a few hundred short lines; anything far larger is not one.
MAX_CONTOUR_BYTES = 1 << 20
#: A DICOM file larger than this is refused before it is read into memory.
MAX_DICOM_BYTES = 512 * 2**20
#: Cases named in full in the split note; longer lists are cut.
NOTE_CASES = 20

GRAYSCALE, RGB = "L", "RGB"
FOLDER, ARCHIVE = "folder", "archive"
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


# --- the split ---------------------------------------------------------------------------------
def stage_case_counts(n: int, val_percent: float, test_percent: float) -> tuple[int, int, int]:
    """``(train, val, test)`` numbers of cases among ``n``.

    A stage gets ``percent`` % of the cases, rounded half up, and at least one case when
    its percentage is positive; training keeps at least one case (test gives way first,
    then validation).
    """

    def share(percent: float) -> int:
        count = math.floor(n * percent / 100 + 0.5)
        return max(count, 1) if percent > 0 and n else count

    val, test = share(val_percent), share(test_percent)
    excess = max(0, val + test - (n - 1))
    cut = min(test, excess)
    test -= cut
    val = max(0, val - (excess - cut))
    return n - val - test, val, test


def split_cases(cases: list[str], val_percent: float, test_percent: float, seed: int):
    """``{case: stage}``: the cases (sorted, then shuffled with ``seed``) dealt to stages by
    ``stage_case_counts``. The same cases, percentages and seed always give the same split."""
    order = sorted(set(cases))
    random.Random(seed).shuffle(order)
    _, n_val, n_test = stage_case_counts(len(order), val_percent, test_percent)
    stages = [VAL] * n_val + [TEST] * n_test
    return {case: stages[i] if i < len(stages) else TRAIN for i, case in enumerate(order)}


# --- contours -------------------------------------------------------------------------------
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


# --- where the folders are -----------------------------------------------------------------------
@dataclass(frozen=True)
class Roots:
    """The image and contour folders of a build, and how messages name them.

    ``local``: folders the job extracted from an uploaded archive (read directly, not
    confined to the data roots); labels are then ``<archive>:<folder in the archive>``.
    """

    images: Path
    contours: Path
    image_label: str
    contour_label: str
    local: bool = False

    def image_name(self, relative: str) -> str:
        return _join(self.image_label, relative)

    def contour_name(self, relative: str) -> str:
        return _join(self.contour_label, relative)


def _join(label: str, relative: str) -> str:
    return f"{label}{relative}" if label.endswith((":", "/")) else f"{label}/{relative}"


def _server_folder(path: str) -> Path:
    """``path`` confined to the data roots again: the job must not trust the options blindly."""
    try:
        folder = confine(path)
    except ValidationError as exc:
        raise ValueError(exc.messages[0]) from None
    if not folder.is_dir():
        raise ValueError(f"Folder {path} does not exist on the server.")
    return folder


def server_roots(options: dict[str, Any]) -> Roots:
    image, contour = options["image_folder"], options["contour_folder"]
    return Roots(
        images=_server_folder(image), contours=_server_folder(contour),
        image_label=str(image), contour_label=str(contour),
    )  # fmt: skip


def archive_roots(ref: dict[str, Any], workdir: Path, limits: dict | None) -> Roots:
    """Download an uploaded archive, check and extract it, and find its two folders.

    The contour folder is the one holding ``<case>/contours-manual/IRCCI-expert/`` with
    contour files; the image folder the one whose case folders hold ``IM-*.dcm`` files
    (the same folder may be both). ``ValueError`` unless there is exactly one of each.
    """
    name = ref.get("name") or "archive"
    download = workdir / "upload.archive"
    try:
        with open(download, "wb") as out:
            for chunk in get_store().stream(ref["upload_key"]):
                out.write(chunk)
    except ArtifactNotFound:
        raise ValueError(f"The uploaded archive {name} is no longer stored.") from None
    target = workdir / "archive"
    extract_archive(download, name, target, Limits(**limits) if limits else Limits.from_settings())
    download.unlink()
    images, contours = set(), set()
    for dirpath, dirnames, filenames in os.walk(target):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        folder = Path(dirpath)
        if folder.parts[-2:] == CONTOUR_DIRS and any(CONTOUR_NAME.match(f) for f in filenames):
            contours.add(folder.parents[2])
        if any(IMAGE_NAME.match(f) for f in filenames) and folder != target:
            images.add(folder.parent)
    image_root = _the_one(images, "image folder (<case>/IM-<series>-<NNNN>.dcm)", name, target)
    contour_root = _the_one(
        contours, "contour folder (<case>/contours-manual/IRCCI-expert/…txt)", name, target
    )
    return Roots(
        image_root, contour_root, _archive_label(name, image_root, target),
        _archive_label(name, contour_root, target), local=True,
    )  # fmt: skip


def _archive_label(archive: str, root: Path, target: Path) -> str:
    """How messages name a folder of an archive: ``scd.zip:SCD_ManualContours``."""
    relative = root.relative_to(target).as_posix()
    return f"{archive}:" if relative == "." else f"{archive}:{relative}"


def _the_one(found: set[Path], what: str, archive: str, target: Path) -> Path:
    if len(found) == 1:
        return found.pop()
    if not found:
        raise ValueError(f"The archive {archive} holds no {what}.")
    names = ", ".join(sorted(p.relative_to(target).as_posix() or "." for p in found))
    raise ValueError(f"The archive {archive} holds several of one kind of folder: {names}; "
                     f"it must hold one {what}.")  # fmt: skip


def _remove_tree(path: str, owner_pid: int) -> None:
    """Remove the extraction folder when the process that made it exits (not a forked child)."""
    if os.getpid() == owner_pid:
        shutil.rmtree(path, ignore_errors=True)


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


def _read_local(path: Path, limit: int, name: str) -> bytes:
    """A file the job extracted itself (no links: the archive check refused them)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise EntryError(f"{name} cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise EntryError(f"{name} is larger than {limit} bytes")
    return data


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


def _match(images: _ImageIndex, roots: Roots, contour: str, case: str, number: int, wanted):
    """The entry of one contour file: a ``Slice``, or an ``EntryError`` saying what is wrong."""
    candidates = images.candidates(case, number)
    if wanted is not None:
        candidates = [c for c in candidates if c[0] == wanted]
    name = roots.contour_name(contour)
    if len(candidates) == 1:
        image = candidates[0][1]
        if roots.local:
            return Slice(case=case, image=image, contour=contour)
        problem = _confined(roots.contours / contour, name)
        problem = problem or _confined(roots.images / image, roots.image_name(image))
        return problem or Slice(case=case, image=image, contour=contour)
    if candidates:
        names = ", ".join(roots.image_name(path) for _, path in candidates)
        return EntryError(
            f"{name}: several images match ({names}); set the series of case {case} in the "
            "dataset options"
        )
    folder = images.case_dirs.get(case_key(case))
    if folder is None:
        return EntryError(
            f"{name}: the image folder {roots.image_label} has no folder of case {case}"
        )
    in_series = "" if wanted is None else f" of series {wanted:04d}"
    return EntryError(
        f"{name}: no image IM-*-{number:04d}.dcm{in_series} in {roots.image_name(folder)}"
    )


# --- the dataset type ------------------------------------------------------------------------
class SunnybrookData(DataIngestion):
    """Short-axis cine MR slices with the expert's inner (endocardial) contour of the LV.

    Options (the cleaned data of ``SunnybrookForm``): ``source`` (``"folder"``, or
    ``"archive"`` with an uploaded ``archive``), ``image_folder``, ``contour_folder``,
    ``channel_conversion`` (``"L"`` or ``"RGB"``), ``val_percent`` and ``test_percent``
    (shares of the cases), ``seed``, ``series`` (``{case: series number}`` where a case
    folder holds several series), ``intensity``, ``bit_depth``, ``window_center``,
    ``window_width``, ``percentile_low``, ``percentile_high`` (``dicom.Intensity``),
    ``resize_width``, ``resize_height``, ``resize_mode`` (``resize.fit``).

    Features: uint8 or uint16 (H, W, 1) or (H, W, 3). Labels: (H, W) uint8 masks, 0
    background, 1 left ventricle (see ``rasterise_contour``). Stored as NumPy shards,
    with the mean image of the train stage. Stages are drawn by case (``split_cases``).
    """

    category = "Images"

    def __init__(self, is_inference_db: bool = False, **kwargs: Any):
        super().__init__(is_inference_db=is_inference_db, **kwargs)
        self._split: dict[str, list[Slice | EntryError]] | None = None
        self._notes: list[str] = []
        self._roots: Roots | None = None
        self._workdir: str | None = None
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

    def get_notes(self) -> list[str]:
        """How the stages were drawn (by case), once the entries are listed."""
        return list(self._notes)

    # --- itemizing -----------------------------------------------------------------------
    def itemize_entries(self, stage: str) -> list[Slice | EntryError]:
        if stage == INFERENCE:
            return self._inference_entries()
        if self._split is None:
            self._split = self._make_split()
        return list(self._split.get(stage, []))

    def roots(self) -> Roots:
        """The folders read (an uploaded archive is extracted on the first call)."""
        if self._roots is None:
            if self.userdata.get("source") == ARCHIVE:
                workdir = tempfile.mkdtemp(prefix="digits-sunnybrook-")
                atexit.register(_remove_tree, workdir, os.getpid())
                self._workdir = workdir
                limits = self.userdata.get("archive_limits")
                self._roots = archive_roots(self.userdata["archive"], Path(workdir), limits)
            else:
                self._roots = server_roots(self.userdata)
        return self._roots

    def _make_split(self) -> dict[str, list[Slice | EntryError]]:
        entries = self._all_entries(self.roots())
        stage_of = split_cases(
            [case for case, _ in entries], float(self.userdata.get("val_percent") or 0),
            float(self.userdata.get("test_percent") or 0), int(self.userdata.get("seed") or 0),
        )  # fmt: skip
        # Each stage keeps the folders' order, so that entry numbers follow case and slice.
        split: dict[str, list[Slice | EntryError]] = {stage: [] for stage in STAGES}
        for case, entry in entries:
            split[stage_of[case]].append(entry)
        self._notes = [_split_note(stage_of)]
        return split

    def _all_entries(self, roots: Roots) -> list[tuple[str, Slice | EntryError]]:
        """``(case key, entry)`` of every contour file, in folder order."""
        images = _ImageIndex(roots.images)
        series = {case_key(c): int(s) for c, s in (self.userdata.get("series") or {}).items()}
        return [
            (case_key(case), _match(images, roots, contour, case, number, series.get(case_key(case))))
            for contour, case, number in _find_contours(roots.contours)
        ]  # fmt: skip

    def _inference_entries(self) -> list[DatasetRecord | UploadedSlice]:
        """What the inference form chose: a record of the validation stage (read by the
        platform from the built dataset) or the uploaded DICOM file (and contour file)."""
        record = self.userdata.get("validation_record")
        if record is not None:
            return [DatasetRecord(VAL, int(record))]
        upload = self.userdata["dicom_file"]
        contour = self.userdata.get("contour_file")
        return [UploadedSlice(upload.name, contour.name if contour else None)]

    # --- encoding ------------------------------------------------------------------------
    def encode_entry(self, entry: Slice) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(entry, UploadedSlice):
            return self._encode_upload()
        roots = self.roots()
        image_name, contour_name = roots.image_name(entry.image), roots.contour_name(entry.contour)
        image_data, contour_data = self._read_pair(roots, entry, image_name, contour_name)
        image = read_dicom_image(image_data, image_name, Intensity.from_options(self.userdata))
        features = convert_channels(image, self.userdata.get("channel_conversion") or GRAYSCALE)
        points = parse_contour(contour_data, contour_name)
        mask = rasterise_contour(points, image.shape[:2], contour_name)
        return self._fit(features, mask)

    def _read_pair(self, roots: Roots, entry: Slice, image_name: str, contour_name: str):
        """The bytes of an entry's image (a file object) and contour file."""
        if roots.local:
            image = _read_local(roots.images / entry.image, MAX_DICOM_BYTES, image_name)
            contour = _read_local(roots.contours / entry.contour, MAX_CONTOUR_BYTES, contour_name)
            return io.BytesIO(image), contour
        # Read through confined readers (one pair per process; the pool's processes are
        # forked): the files checked when the entries were listed may since have been
        # swapped for links out of the data roots, or for FIFOs that would block a read.
        if self._readers is None or self._readers[0] != os.getpid():
            self._readers = (
                os.getpid(), ConfinedReader(MAX_DICOM_BYTES), ConfinedReader(MAX_CONTOUR_BYTES)
            )  # fmt: skip
        _, images, contours = self._readers
        image = _read(images, Path(self.userdata["image_folder"]) / entry.image, image_name)
        contour = _read(
            contours, Path(self.userdata["contour_folder"]) / entry.contour, contour_name
        )
        return io.BytesIO(image), contour

    def _fit(self, features: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        width, height = self.userdata.get("resize_width"), self.userdata.get("resize_height")
        if not (width and height):
            return features, mask
        return fit(
            features, mask, int(width), int(height), self.userdata.get("resize_mode") or SQUASH
        )

    def _encode_upload(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The uploaded DICOM file as this dataset encodes its entries; its mask when a
        contour file came with it (the ground truth), else ``None``."""
        upload, contour = self.userdata["dicom_file"], self.userdata.get("contour_file")
        upload.seek(0)
        image = read_dicom_image(upload, upload.name, Intensity.from_options(self.userdata))
        features = convert_channels(image, self.userdata.get("channel_conversion") or GRAYSCALE)
        if contour is None:
            return self._fit(features, np.zeros(features.shape[:2], np.uint8))[0], None
        contour.seek(0)
        data = contour.read(MAX_CONTOUR_BYTES + 1)
        if len(data) > MAX_CONTOUR_BYTES:
            raise EntryError(f"{contour.name} is larger than {MAX_CONTOUR_BYTES} bytes")
        mask = rasterise_contour(parse_contour(data, contour.name), image.shape[:2], contour.name)
        return self._fit(features, mask)

    def features_of(self, source: str | os.PathLike | IO[bytes], name: str) -> np.ndarray:
        """The features of one DICOM image as this dataset encodes its entries: the same
        intensity mapping, channels and size (the input of inference on an uploaded file)."""
        image = read_dicom_image(source, name, Intensity.from_options(self.userdata))
        features = convert_channels(image, self.userdata.get("channel_conversion") or GRAYSCALE)
        return self._fit(features, np.zeros(features.shape[:2], np.uint8))[0]


@dataclass(frozen=True)
class UploadedSlice:
    """The inference entry of an uploaded DICOM file (the file is in the options)."""

    image: str
    contour: str | None

    def __str__(self) -> str:
        return self.image if self.contour is None else f"{self.image} (contour {self.contour})"


def _split_note(stage_of: dict[str, str]) -> str:
    """The sentence the dataset page shows about the split."""
    parts = []
    for stage in STAGES:
        cases = sorted(c for c, s in stage_of.items() if s == stage)
        named = ", ".join(cases[:NOTE_CASES]) + (f", … ({len(cases) - NOTE_CASES} more)"
                                                  if len(cases) > NOTE_CASES else "")  # fmt: skip
        parts.append(f"{stage}: {len(cases)} case{'s' * (len(cases) != 1)}"
                     + (f" ({named})" if cases else ""))  # fmt: skip
    return (
        "Split by case (patient), never by slice: no case is in two stages. "
        + "; ".join(parts)
        + "."
    )
