"""Helpers of the image classification tests (a module, since conftest is not importable).

Imported as ``imageclass_helpers``: pytest puts this folder on ``sys.path``.
"""

import io
import math
import stat
import struct
import tarfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from apps.datasets import shards
from apps.datasets.models import Dataset
from tests.conftest import wait_until


def finished(pk: int, timeout: float = 180) -> Dataset:
    """The dataset once its build has ended (ready or error)."""
    return wait_until(
        lambda: Dataset.objects.exclude(status="building").filter(pk=pk).first(), timeout=timeout
    )


def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format=fmt)
    return out.getvalue()


@dataclass
class Digits:
    """scikit-learn's 8×8 handwritten digits, as 8-bit grayscale images (values 0..16 → 0..255)."""

    images: np.ndarray  # (n, 8, 8) uint8
    targets: np.ndarray  # (n,) int

    def names(self, indices=None) -> dict[int, str]:
        """File name (without folder) of each image: ``img_0042.png``."""
        indices = range(len(self.images)) if indices is None else indices
        return {int(i): f"img_{int(i):04d}.png" for i in indices}

    def indices(self, classes=None, per_class=None) -> list[int]:
        chosen = []
        for digit in sorted(set(self.targets.tolist()) if classes is None else classes):
            found = np.flatnonzero(self.targets == digit).tolist()
            chosen += found[:per_class] if per_class else found
        return chosen

    def write_folder(self, root: Path, classes=None, per_class=None) -> dict[int, list[int]]:
        """``root/<digit>/img_NNNN.png``; returns ``{digit: [image indices]}``."""
        written: dict[int, list[int]] = {}
        for i in self.indices(classes, per_class):
            digit = int(self.targets[i])
            folder = root / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"img_{i:04d}.png").write_bytes(png_bytes(self.images[i]))
            written.setdefault(digit, []).append(i)
        return written

    def counts(self, written: dict[int, list[int]]) -> dict[int, int]:
        return {digit: len(items) for digit, items in written.items()}


def expected_split(counts: dict, val_percent: int, test_percent: int) -> dict[str, dict[str, int]]:
    """Per stage, ``{label: count}`` — computed here from the documented rule, per class:
    validation ``ceil(n * val% / 100)``, test ``ceil(n * test% / 100)``, the rest training."""
    split = {"train": {}, "val": {}, "test": {}}
    for label, n in counts.items():
        val = math.ceil(n * val_percent / 100)
        test = math.ceil(n * test_percent / 100)
        for stage, count in (("train", n - val - test), ("val", val), ("test", test)):
            if count:
                split[stage][str(label)] = count
    return split


def class_counts(manifest) -> dict[str, dict[str, int]]:
    return {stage: info.get("class_counts", {}) for stage, info in manifest["stages"].items()}


def stored_entries(dataset) -> Counter:
    """``Counter((stage-independent) label, image bytes)`` of every entry the dataset holds."""
    found = Counter()
    for stage, info in dataset.manifest["stages"].items():
        for index in range(info["count"]):
            features, label = shards.read_entry(dataset, stage, index)
            found[(label, features.tobytes())] += 1
    return found


def job_log(dataset) -> str:
    """Every log line of the dataset's build job."""
    from apps.jobs.models import JobEvent

    events = JobEvent.objects.filter(job=dataset.job, type="log").order_by("seq")
    return "\n".join(e.data.get("message", "") for e in events)


def bomb_png(width: int, height: int) -> bytes:
    """A small PNG file whose header declares ``width`` × ``height`` pixels.

    Its pixel data is that of a 1×1 image: opening it costs nothing, decoding it
    would try to allocate the declared size.
    """
    data = bytearray(png_bytes(np.zeros((1, 1), np.uint8)))
    header = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return bytes(data)


def make_zip(path: Path, members) -> Path:
    """A zip of ``(name, bytes)`` members; ``bytes`` None makes a symbolic link member."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            if data is None:
                info = zipfile.ZipInfo(name)
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, "/etc/passwd")
            else:
                zf.writestr(name, data)
    return path


@dataclass(frozen=True)
class Special:
    """A tar member that is not a regular file: ``tarfile.SYMTYPE``, ``CHRTYPE``, …"""

    type: bytes
    linkname: str = ""


def make_tar(path: Path, members, mode: str = "w:gz") -> Path:
    """A tar of ``(name, bytes)`` members; ``(name, Special(...))`` for links and devices."""
    with tarfile.open(path, mode) as tf:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            if isinstance(payload, Special):
                info.type, info.linkname = payload.type, payload.linkname
                tf.addfile(info)
            else:
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
    return path


def digit_members(digits: Digits, classes=(0, 1), per_class=3, folder="") -> list:
    """``(name, png bytes)`` archive members of a few digit images per class."""
    return [
        (f"{folder}{int(digits.targets[i])}/img_{i:04d}.png", png_bytes(digits.images[i]))
        for i in digits.indices(classes, per_class)
    ]
