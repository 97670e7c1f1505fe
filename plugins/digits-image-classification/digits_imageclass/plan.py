"""Deciding which image goes to which stage with which label (in the job process).

For a folder-like source: classes are the sub-folders of the training source. Per
class, in this order: empty classes are reported and dropped; files are shuffled
(if asked, with the seed) or kept in name order; a class above ``max_per_class``
is truncated to it; a class below ``min_per_class`` is reported and dropped. Fewer
than two classes left fails the build. Labels are the indices of the kept class
names in sorted order.

Then, per class, ``split_counts`` sets aside validation and test images (the first
ones after shuffling); the rest is training. A separate validation or test source
replaces the percentage for its stage: its images are taken whole, labelled by
class name; folders of classes the training source does not have are reported and
skipped. Finally each stage is shuffled as a whole (if asked).

A text list source works the same way on the lines of the training list, grouped by
their label; labels keep their index in the labels file.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError

from apps.core.plugins import STAGES, TEST, TRAIN, VAL, EntryError, confine
from apps.core.storage import ArtifactNotFound, get_store
from digits_imageclass import sources
from digits_imageclass.archives import Limits, extract_archive
from digits_imageclass.sources import LOCAL, SERVER, Entry, note

FOLDER, ARCHIVE, STORE_PREFIX, TEXT_LIST = "folder", "archive", "store", "list"
#: The option naming each stage's source, per source kind (``None``: the stage has none).
STAGE_OPTIONS = {
    FOLDER: {TRAIN: "folder", VAL: "val_folder", TEST: "test_folder"},
    ARCHIVE: {TRAIN: "archive", VAL: "val_archive", TEST: "test_archive"},
    STORE_PREFIX: {TRAIN: "prefix", VAL: "val_prefix", TEST: "test_prefix"},
}
LIST_OPTIONS = {
    TRAIN: ("train_list", "train_list_path"),
    VAL: ("val_list", "val_list_path"),
    TEST: ("test_list", "test_list_path"),
}
STAGE_WORDS = {TRAIN: "training", VAL: "validation", TEST: "test"}


def split_counts(n: int, val_percent: int, test_percent: int) -> tuple[int, int, int]:
    """``(train, val, test)`` sizes of a class of ``n`` images.

    Validation and test get ``ceil(n * percent / 100)`` images each, so any positive
    percentage represents every class; training keeps at least one image (test gives
    way first, then validation).
    """
    val = -(-n * val_percent // 100)
    test = -(-n * test_percent // 100)
    excess = max(0, val + test - (n - 1))
    cut = min(test, excess)
    test -= cut
    val -= excess - cut
    return n - val - test, val, test


@dataclass
class Plan:
    names: list[str]
    stages: dict[str, list[Entry | EntryError]]


class Planner:
    """Lists the entries of every stage from the dataset options (the form's cleaned data)."""

    def __init__(self, options: dict[str, Any], workdir: Callable[[], Path]):
        self.options = options
        self.workdir = workdir
        self.shuffle = bool(options.get("shuffle", True))
        self.rng = random.Random(options.get("seed") or 0)
        self.min_per_class = options.get("min_per_class") or 1
        self.max_per_class = options.get("max_per_class") or None

    def plan(self) -> Plan:
        if self.options.get("source") == TEXT_LIST:
            return self._plan_list()
        return self._plan_folders()

    # --- shared -----------------------------------------------------------------------------
    def _select(self, name: str, files: list, where: str) -> list | None:
        """Shuffle, truncate and size-check one class; None when it is dropped."""
        files = list(files)
        if self.shuffle:
            self.rng.shuffle(files)
        if self.max_per_class and len(files) > self.max_per_class:
            note(
                f"Class {name!r}: {len(files)} images in {where}, "
                f"truncated to the maximum of {self.max_per_class}"
            )
            files = files[: self.max_per_class]
        if len(files) < self.min_per_class:
            note(
                f"Class {name!r}: only {len(files)} image(s) in {where}, fewer than the "
                f"minimum of {self.min_per_class} per class; dropped"
            )
            return None
        return files

    def _percent(self, stage: str, separate: bool) -> int:
        return 0 if separate else int(self.options.get(f"{stage}_percent") or 0)

    def _split(self, kept: dict[int, list], separate: dict[str, bool]) -> dict[str, list]:
        stages: dict[str, list] = {stage: [] for stage in STAGES}
        val_percent = self._percent(VAL, separate[VAL])
        test_percent = self._percent(TEST, separate[TEST])
        for label, files in kept.items():
            _, n_val, n_test = split_counts(len(files), val_percent, test_percent)
            labelled = [e.labelled(label) for e in files]
            stages[VAL] += labelled[:n_val]
            stages[TEST] += labelled[n_val : n_val + n_test]
            stages[TRAIN] += labelled[n_val + n_test :]
        return stages

    def _finish(self, names: list[str], stages: dict[str, list]) -> Plan:
        if self.shuffle:
            for entries in stages.values():
                self.rng.shuffle(entries)
        note(
            f"{len(names)} classes; "
            + ", ".join(f"{stage}: {len(entries)} images" for stage, entries in stages.items())
        )
        return Plan(names=names, stages=stages)

    @staticmethod
    def _too_few(count: int, where: str, kept: list[str]) -> ValueError:
        found = f"{count} ({', '.join(kept)})" if kept else "none"
        return ValueError(
            f"Image classification needs at least 2 classes with images; {where} has {found} "
            "after dropping empty classes and classes below the minimum per class."
        )

    # --- folders, archives, store prefixes ---------------------------------------------------
    def _plan_folders(self) -> Plan:
        kind = self.options.get("source") or FOLDER
        if kind not in STAGE_OPTIONS:
            raise ValueError(f"Unknown image source {kind!r}.")
        option = STAGE_OPTIONS[kind]
        classes, where = self._scan(kind, TRAIN, self.options.get(option[TRAIN]))
        kept_by_name: dict[str, list[Entry]] = {}
        for name in sorted(classes):
            if not classes[name]:
                note(f"Class folder {name!r} in {where} has no images; skipped")
                continue
            files = self._select(name, classes[name], where)
            if files is not None:
                kept_by_name[name] = files
        names = sorted(kept_by_name)
        if len(names) < 2:
            raise self._too_few(len(names), where, names)
        index = {name: label for label, name in enumerate(names)}
        separate = {stage: bool(self.options.get(option[stage])) for stage in (VAL, TEST)}
        stages = self._split({index[n]: files for n, files in kept_by_name.items()}, separate)
        for stage in (VAL, TEST):
            if separate[stage]:
                stages[stage] += self._separate(kind, stage, index)
        return self._finish(names, stages)

    def _separate(self, kind: str, stage: str, index: dict[str, int]) -> list[Entry]:
        classes, where = self._scan(kind, stage, self.options[STAGE_OPTIONS[kind][stage]])
        entries = []
        for name in sorted(classes):
            if name not in index:
                note(f"Class folder {name!r} in {where} is not a training class; skipped")
                continue
            if not classes[name]:
                note(f"Class folder {name!r} in {where} has no images; skipped")
            entries += [e.labelled(index[name]) for e in classes[name]]
        return entries

    def _scan(self, kind: str, stage: str, value: Any) -> tuple[dict[str, list[Entry]], str]:
        """``({class: entries}, description)`` of the source of ``stage``."""
        word = STAGE_WORDS[stage]
        if kind == FOLDER:
            root = _confined(value, f"the {word} folder")
            if not root.is_dir():
                raise ValueError(f"The {word} folder {value} does not exist on this server.")
            return sources.scan_folder(root, SERVER, str(root)), f"the {word} folder {root}"
        if kind == STORE_PREFIX:
            prefix = sources.check_import_prefix(value)
            return sources.scan_store(prefix), f"the {word} store prefix {prefix}"
        root = self._extract(value, stage)
        name = value.get("name") or "archive"
        classes = sources.scan_folder(root, LOCAL, name)
        return classes, f"the {word} archive {name}"

    def _extract(self, ref: dict[str, Any], stage: str) -> Path:
        """Download an uploaded archive, check and extract it; the class folder root."""
        name = ref.get("name") or "archive"
        workdir = self.workdir()
        download = workdir / f"{stage}.archive"
        try:
            with open(download, "wb") as out:
                for chunk in get_store().stream(ref["upload_key"]):
                    out.write(chunk)
        except ArtifactNotFound:
            raise ValueError(f"The uploaded archive {name} is no longer stored.") from None
        limits = self.options.get("archive_limits") or {}
        limits = Limits(**limits) if limits else Limits.from_settings()
        target = workdir / stage
        note(f"Checking and extracting {name}")
        members = extract_archive(download, name, target, limits)
        download.unlink()
        note(f"Extracted {members} members of {name}")
        return sources.unwrap(target)

    # --- text lists ------------------------------------------------------------------------
    def _plan_list(self) -> Plan:
        names = list(self.options.get("labels") or [])
        if len(names) < 2:
            raise ValueError("The labels file must name at least 2 classes.")
        base = self.options.get("path_prefix") or None
        base = _confined(base, "the path prefix") if base else None
        entries, where = self._read_list(TRAIN, base, len(names))
        bad = [e for e in entries if isinstance(e, EntryError)]
        by_label: dict[int, list[Entry]] = {}
        for entry in entries:
            if isinstance(entry, Entry):
                by_label.setdefault(entry.label, []).append(entry)
        kept: dict[int, list[Entry]] = {}
        for label, name in enumerate(names):
            if not by_label.get(label):
                note(f"Class {name!r} has no images in {where}; skipped")
                continue
            files = self._select(name, by_label[label], where)
            if files is not None:
                kept[label] = files
        if len(kept) < 2:
            raise self._too_few(len(kept), where, [names[label] for label in kept])
        separate = {stage: self._list_ref(stage) is not None for stage in (VAL, TEST)}
        stages = self._split(kept, separate)
        stages[TRAIN] += bad
        for stage in (VAL, TEST):
            if separate[stage]:
                entries, where = self._read_list(stage, base, len(names))
                kept_entries = [e for e in entries if isinstance(e, EntryError) or e.label in kept]
                if dropped := len(entries) - len(kept_entries):
                    note(f"{dropped} line(s) of {where} name classes left out above; skipped")
                stages[stage] += kept_entries
        return self._finish(names, stages)

    def _list_ref(self, stage: str) -> tuple[str, Any] | None:
        upload, path = LIST_OPTIONS[stage]
        if self.options.get(upload):
            return upload, self.options[upload]
        if self.options.get(path):
            return path, self.options[path]
        return None

    def _read_list(self, stage: str, base: Path | None, label_count: int):
        word = STAGE_WORDS[stage]
        _, value = self._list_ref(stage) or (None, None)
        if value is None:
            raise ValueError(f"No {word} list was given.")
        if isinstance(value, dict):  # an upload
            name = value.get("name") or f"{word} list"
            try:
                data = get_store().get(value["upload_key"])
            except ArtifactNotFound:
                raise ValueError(f"The uploaded {word} list {name} is no longer stored.") from None
            list_base = base
        else:
            path = _confined(value, f"the {word} list")
            name = str(path)
            data = path.read_bytes()
            list_base = base or path.parent
        text = sources.decode_text(data, name)
        return sources.parse_list(text, name, list_base, label_count), f"the {word} list {name}"


def _confined(path: str, what: str) -> Path:
    """``confine`` for the job: the worker's own DIGITS_SERVER_DATA_ROOTS decide."""
    try:
        return confine(path)
    except ValidationError as exc:
        raise ValueError(f"{what.capitalize()}: {' '.join(exc.messages)}") from None
