"""Finding the images of each class: in a folder, below an object-store prefix, in a text list.

A *folder source* (a server folder, an extracted archive, a store prefix) holds one
sub-folder per class; images in nested folders belong to their top-level class, files
directly in the source folder belong to none and are ignored. Names starting with a
dot and ``__MACOSX`` folders (archiver debris) are skipped everywhere.

A *text list* has one ``path label`` line per image, ``label`` an index into a labels
file (one class name per line, line 1 naming class 0).
"""

from __future__ import annotations

import operator
import os
import re
from pathlib import Path
from typing import NamedTuple

from django.conf import settings

from apps.core.plugins import EntryError
from apps.core.storage import get_store, validate_key
from digits_imageclass.images import is_image_name

#: Kinds of entry location.
SERVER = "server"  # a path on the server, confined to DIGITS_SERVER_DATA_ROOTS when opened
LOCAL = "local"  # a file the job itself extracted from an uploaded archive
STORE = "store"  # a key in the artifact store

DEFAULT_IMPORT_PREFIXES = ("imports/",)
_LIST_LINE = re.compile(r"^(?P<path>.+?)\s+(?P<label>[-+]?\d+)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Entry(NamedTuple):
    """One image of the dataset: where it is, how messages name it, its class index.

    A named tuple, not a dataclass: one is made, labelled and sent to a pool process
    per image, and a tuple is the cheapest to build and to pickle.
    """

    kind: str
    location: str
    name: str
    label: int = -1

    def __str__(self) -> str:
        return self.name

    def labelled(self, label: int) -> Entry:
        return Entry(self.kind, self.location, self.name, label)


def note(message: str) -> None:
    """A line for the job log (the job process's stdout is logged line by line)."""
    print(message, flush=True)


_by_name = operator.attrgetter("name")


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def import_prefixes() -> list[str]:
    """The store prefixes datasets may be imported from (``DIGITS_IMPORT_PREFIXES``)."""
    configured = getattr(settings, "DIGITS_IMPORT_PREFIXES", DEFAULT_IMPORT_PREFIXES)
    return [validate_key(p.strip("/")) + "/" for p in configured if p.strip("/")]


def check_import_prefix(prefix: str) -> str:
    """``prefix`` as a folder key ending in '/', if it lies below an allowed import prefix.

    Raises ValueError otherwise: the store also holds every user's datasets and models.
    """
    try:
        folder = validate_key(prefix.strip().strip("/")) + "/"
    except ValueError:
        raise ValueError(f"{prefix!r} is not a valid store prefix.") from None
    allowed = import_prefixes()
    if not any(folder.startswith(root) for root in allowed):
        raise ValueError(
            f"{folder} is outside the store prefixes datasets may be imported from "
            f"({', '.join(allowed) or 'none'}; see DIGITS_IMPORT_PREFIXES)."
        )
    return folder


def _class_name_problem(name: str) -> str | None:
    if _CONTROL.search(name):
        return "has control characters in its name"
    return None


def scan_folder(root: Path, kind: str, display: str) -> dict[str, list[Entry]]:
    """``{class: [entries]}`` of the class folders below ``root`` (files in name order).

    ``display`` replaces ``root`` in entry names. A class folder without images is
    kept with an empty list (the caller reports it).
    """
    classes: dict[str, list[Entry]] = {}
    stray = 0
    for child in sorted(root.iterdir(), key=lambda p: p.name):
        if is_hidden(child.name):
            continue
        if not child.is_dir():
            stray += 1
            continue
        if problem := _class_name_problem(child.name):
            note(f"Class folder {child.name!r} {problem}; skipped")
            continue
        found = []
        # Strings, not Path objects: this runs once per image (tens of µs each with pathlib).
        for dirpath, dirnames, filenames in os.walk(child):
            dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
            shown = f"{display}/{Path(dirpath).relative_to(root).as_posix()}/"
            folder = dirpath + os.sep
            found += [
                Entry(kind, folder + filename, shown + filename)
                for filename in filenames
                if not is_hidden(filename) and is_image_name(filename)
            ]
        classes[child.name] = sorted(found, key=_by_name)
    if stray:
        note(f"{stray} file(s) directly in {display} belong to no class folder; ignored")
    return classes


def unwrap(root: Path) -> Path:
    """The class folder root of an extracted archive: wrapping single folders are skipped.

    ``flowers.zip`` holding ``flowers/daisy/…`` and ``flowers/rose/…`` has its classes in
    ``flowers/``. (A single folder whose sub-folders are the classes is the only reading
    that can succeed: one class is never enough.)
    """
    while True:
        children = [c for c in root.iterdir() if not is_hidden(c.name)]
        if len(children) != 1 or not children[0].is_dir():
            return root
        if not any(g.is_dir() and not is_hidden(g.name) for g in children[0].iterdir()):
            return root
        root = children[0]


def scan_store(prefix: str) -> dict[str, list[Entry]]:
    """``{class: [entries]}`` of the keys below the store folder ``prefix``."""
    classes: dict[str, list[Entry]] = {}
    stray = 0
    for key in get_store().list(prefix):
        parts = key[len(prefix) :].split("/")
        if len(parts) < 2:
            stray += 1
            continue
        if any(is_hidden(p) for p in parts) or not is_image_name(parts[-1]):
            continue
        if _class_name_problem(parts[0]):
            continue
        classes.setdefault(parts[0], []).append(Entry(STORE, key, key))
    if stray:
        note(f"{stray} key(s) directly below {prefix} belong to no class folder; ignored")
    return classes


# --- text lists -------------------------------------------------------------------------------
def decode_text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} is not UTF-8 text ({exc})") from None


def parse_labels(text: str, name: str) -> list[str]:
    """Class names of a labels file, one per line; ValueError naming a duplicate or gap."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    labels: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        label = line.strip()
        if not label:
            raise ValueError(f"{name}: line {number} is empty; each line names one class.")
        if label in seen:
            raise ValueError(
                f"{name}: duplicate label {label!r} (lines {seen[label]} and {number})."
            )
        seen[label] = number
        labels.append(label)
    if len(labels) < 2:
        raise ValueError(
            f"{name} names {len(labels)} class(es); image classification needs at least 2."
        )
    return labels


def parse_list(
    text: str, name: str, base: Path | None, label_count: int
) -> list[Entry | EntryError]:
    """The entries of a text list: ``path label`` per line (blank and ``#`` lines skipped).

    Relative paths are taken below ``base``. A line that cannot be an entry becomes an
    ``EntryError`` in its place, which the build skips and lists.
    """
    entries: list[Entry | EntryError] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name} line {number}"
        match = _LIST_LINE.match(line)
        if match is None:
            entries.append(EntryError(f"{where}: expected 'path label', got {line[:200]!r}"))
            continue
        label = int(match["label"])
        if not 0 <= label < label_count:
            entries.append(
                EntryError(
                    f"{where}: label {label} is not a line of the labels file "
                    f"(0..{label_count - 1})"
                )
            )
            continue
        path = Path(match["path"])
        if not path.is_absolute():
            if base is None:
                entries.append(
                    EntryError(f"{where}: relative path {match['path']} and no path prefix")
                )
                continue
            path = base / path
        entries.append(Entry(SERVER, str(path), str(path), label))
    return entries
