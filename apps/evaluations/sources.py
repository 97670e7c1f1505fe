"""What an evaluation classifies when it is not a dataset stage: the images of an uploaded
archive or of a text list (job processes only).

An archive is extracted with the image classification plugin's checks
(``digits_imageclass.archives``: paths, links, member count and size); its images are
taken in sorted path order, and one whose top folder is named like a class of the model is
labelled with it. A list has DIGITS' format, one ``path [label]`` per line (blank and
``#`` lines skipped): paths inside the archive when one came with it, else files on the
server read only under ``DIGITS_SERVER_DATA_ROOTS`` (``ConfinedReader``). Every file is
held to the image limits of ``apps.core.images``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from apps.core import images

_LINE = re.compile(r"^(?P<path>.+?)(?:\s+(?P<label>[-+]?\d+))?$")


class SourceError(ValueError):
    """The archive or list cannot be used at all (the job fails with this message)."""


@dataclass(frozen=True)
class Item:
    name: str  # as the user wrote it (archive path or list line's path)
    label: int  # -1: unknown
    read: Callable[[], bytes]


def _file_reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        if path.stat().st_size > images.MAX_FILE_BYTES:
            raise ValueError(f"more than {images.MAX_FILE_BYTES} bytes")
        return path.read_bytes()

    return read


def extract(archive: Path, name: str, target: Path) -> Path:
    """Extract ``archive`` (checked member by member) into ``target``; ``SourceError``."""
    from digits_imageclass.archives import ArchiveRefused, Limits, extract_archive

    try:
        extract_archive(archive, name, target, Limits.from_settings())
    except ArchiveRefused as exc:
        raise SourceError(str(exc)) from None
    return target


def archive_items(root: Path, class_names: list[str]) -> list[Item]:
    """Every image file below ``root`` in path order, labelled by a top folder named like a
    class."""
    from digits_imageclass.images import is_image_name

    by_name = {name: index for index, name in enumerate(class_names)}
    items = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        parts = relative.split("/")
        if any(part.startswith(".") for part in parts) or not is_image_name(path.name):
            continue
        label = by_name.get(parts[0], -1) if len(parts) > 1 else -1
        items.append(Item(relative, label, _file_reader(path)))
    return items


def _inside(root: Path, name: str) -> Path | None:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or name.startswith("/") or ".." in parts:
        return None
    return root.joinpath(*parts)


def _server_reader(reader, name: str) -> Callable[[], bytes]:
    return lambda: reader.read(name)


def list_items(text: str, classes: int, root: Path | None) -> tuple[list[Item], list[str]]:
    """The items of a text list and the messages of the lines left out."""
    from apps.core.plugins import ConfinedReader

    reader = None if root is not None else ConfinedReader(images.MAX_FILE_BYTES)
    items, skipped = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        label = int(match["label"]) if match["label"] is not None else -1
        if not -1 <= label < classes:
            skipped.append(f"line {number}: label {label} is not a class (0..{classes - 1})")
            continue
        name = match["path"]
        if root is None:
            items.append(Item(name, label, _server_reader(reader, name)))
            continue
        path = _inside(root, name)
        if path is None:
            skipped.append(f"line {number}: {name!r} is not a path inside the archive")
            continue
        items.append(Item(name, label, _file_reader(path)))
    return items, skipped


def decode_text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SourceError(f"{name} is not UTF-8 text") from None
