"""Questions the dataset pages ask of a built dataset's labels, without decoding images.

Every stage keeps its labels in small shards beside the features
(``<stage>/labels-NNNNN.npy``: ``(n,)`` int64 class indices, or ``(n, H, W)``
uint8 masks; see ``apps.datasets.shards``). They are read through
``shards.local_copy`` — downloaded once, then memory-mapped — so finding the
entries of a class costs one pass over ``n`` integers, not ``n`` images.
Class questions only make sense for class labels; for masks they answer nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from apps.core.plugins import STAGES
from apps.datasets import shards


def has_class_labels(dataset) -> bool:
    """Whether each entry's label is one class index (not a mask)."""
    return dataset.manifest.get("label", {}).get("kind") == "class"


def class_name(dataset, label: int) -> str:
    """The name of class ``label`` (its index when the type gives no names)."""
    names = dataset.manifest.get("label_names") or []
    return names[label] if 0 <= label < len(names) else str(label)


def classes(dataset) -> list[int]:
    """Every class index that occurs in some stage, or has a name, in order."""
    found = set(range(len(dataset.manifest.get("label_names") or [])))
    for info in dataset.manifest.get("stages", {}).values():
        found.update(int(k) for k in info.get("class_counts", {}))
    return sorted(found)


def class_counts(dataset, stage: str) -> dict[int, int]:
    """``{class index: entries}`` of ``stage``, from the manifest."""
    info = dataset.manifest.get("stages", {}).get(stage, {})
    return {int(k): v for k, v in info.get("class_counts", {}).items()}


def class_distribution(dataset) -> dict | None:
    """The entries per class and stage, for a stacked bar chart; None without class labels.

    ``{"classes": [name, ...], "stages": [{"stage": "train", "counts": [n, ...]}, ...]}``,
    with ``counts`` aligned to ``classes`` and only stages that have entries.
    """
    if not has_class_labels(dataset):
        return None
    indices = classes(dataset)
    stages = []
    for stage in STAGES:
        if dataset.stage_count(stage):
            counts = class_counts(dataset, stage)
            stages.append({"stage": stage, "counts": [counts.get(i, 0) for i in indices]})
    return {"classes": [class_name(dataset, i) for i in indices], "stages": stages}


class EntryQueryError(ValueError):
    """A stage or class asked of the entries that cannot be; ``field`` names which."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def entry_filter(dataset, stage: str, label: str = "") -> tuple[str, int | None]:
    """The stage and class (``""``: any) asked for, as text from a query string, checked.

    ``EntryQueryError`` for an unknown stage, a class that is not an index, or a class
    asked of a dataset whose labels are masks.
    """
    if stage not in STAGES:
        raise EntryQueryError("stage", f"Choose one of {', '.join(STAGES)}.")
    if label == "":
        return stage, None
    try:
        number = int(label)
    except ValueError:
        raise EntryQueryError("label", "A class index.") from None
    if not has_class_labels(dataset):
        raise EntryQueryError("label", "This dataset's labels are masks, not classes.")
    return stage, number


def entry_indices(dataset, stage: str, label: int | None = None) -> Sequence[int]:
    """The entries of ``stage`` in order, or those of class ``label``: what a page lists."""
    if label is None:
        return range(dataset.stage_count(stage))
    return entries_of_class(dataset, stage, label)


def entry_rows(dataset, stage: str, indices: Iterable[int]) -> list[dict]:
    """``{"index", "label", "label_name"}`` of each entry (label and name None for masks)."""
    indices = [int(i) for i in indices]
    return [
        {
            "index": index,
            "label": label,
            "label_name": None if label is None else class_name(dataset, label),
        }
        for index, label in zip(indices, labels_of(dataset, stage, indices), strict=True)
    ]


def _label_shards(dataset, stage: str) -> Iterator[tuple[int, np.ndarray]]:
    """``(index of the shard's first entry, its labels, memory-mapped)`` for each shard."""
    start = 0
    for shard in dataset.manifest.get("stages", {}).get(stage, {}).get("shards", []):
        labels = np.load(shards.local_copy(dataset, shard["labels"]), mmap_mode="r")
        yield start, labels
        start += len(labels)


def entries_of_class(dataset, stage: str, label: int) -> np.ndarray:
    """Indices (ascending, int64) of the entries of ``stage`` whose class is ``label``."""
    if not has_class_labels(dataset):
        return np.zeros(0, np.int64)
    found = [
        start + np.flatnonzero(labels == label) for start, labels in _label_shards(dataset, stage)
    ]
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def labels_of(dataset, stage: str, indices: Iterable[int]) -> list[int | None]:
    """The class index of each entry of ``stage`` in ``indices`` (None for masks)."""
    indices = [int(i) for i in indices]
    if not has_class_labels(dataset):
        return [None] * len(indices)
    info = dataset.manifest["stages"][stage]
    size = dataset.manifest["shard_size"]
    loaded: dict[int, np.ndarray] = {}
    result = []
    for index in indices:
        number = index // size
        if number not in loaded:
            key = info["shards"][number]["labels"]
            loaded[number] = np.load(shards.local_copy(dataset, key), mmap_mode="r")
        result.append(int(loaded[number][index % size]))
    return result


def class_samples(dataset, stage: str, per_class: int) -> dict[int, list[int]]:
    """The first ``per_class`` entry indices of each class in ``stage``.

    Reads label shards only until every class has its samples (or there are no more).
    """
    if not has_class_labels(dataset):
        return {}
    wanted = {label: min(per_class, n) for label, n in class_counts(dataset, stage).items()}
    samples: dict[int, list[int]] = {label: [] for label in wanted}
    for start, labels in _label_shards(dataset, stage):
        # One stable sort per shard groups each class's entries in index order.
        order = np.argsort(labels, kind="stable")
        ordered = np.asarray(labels)[order]
        for label, indices in samples.items():
            missing = wanted[label] - len(indices)
            if missing > 0:
                first = int(np.searchsorted(ordered, label, side="left"))
                last = int(np.searchsorted(ordered, label, side="right"))
                indices.extend(int(start + i) for i in order[first : min(last, first + missing)])
        if all(len(samples[label]) >= n for label, n in wanted.items()):
            break
    return samples
