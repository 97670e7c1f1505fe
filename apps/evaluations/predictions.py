"""Per-entry predictions of an evaluation: one ``.npy`` file of a structured array.

One row per classified entry, in the order of the source (a dataset stage's entry
order, an archive's sorted file names, a list's lines):

- ``index`` int64: the entry's number (its index in the dataset stage, else its position);
- ``name`` bytes (UTF-8): the file's path in the archive or list ("" for a dataset stage);
- ``label`` int32: the true class, ``-1`` where the source gave none;
- ``probs`` float32 ``(C,)``: the network's output.

The job writes it below its staging prefix; the worker publishes it with the job when it
succeeds (``apps.jobs.services.complete``), so a failed job leaves none. It is read with
``allow_pickle=False``: nothing in it can run code.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO

import numpy as np

from apps.evaluations.metrics import ranked

NAME = "predictions.npy"


def dtype(classes: int, name_bytes: int) -> np.dtype:
    return np.dtype(
        [("index", "<i8"), ("name", f"S{max(name_bytes, 1)}"), ("label", "<i4"),
         ("probs", "<f4", (classes,))]
    )  # fmt: skip


def table(indices, names: list[str], labels, probs: np.ndarray) -> np.ndarray:
    """The structured array of ``len(indices)`` rows (``names`` may be empty: a stage)."""
    encoded = [n.encode("utf-8") for n in names] or [b""] * len(indices)
    rows = np.zeros(len(indices), dtype(probs.shape[1], max(map(len, encoded), default=1)))
    rows["index"], rows["name"], rows["label"], rows["probs"] = indices, encoded, labels, probs
    return rows


def write(rows: np.ndarray, out: IO[bytes]) -> None:
    np.save(out, rows, allow_pickle=False)


def read(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def name_of(row) -> str:
    return bytes(row["name"]).decode("utf-8", errors="replace")


def csv_lines(rows: np.ndarray, class_names: list[str], top_n: int) -> Iterator[str]:
    """The predictions as CSV: index, name, true class (index and name), then the top
    ``top_n`` classes with their probabilities, then every class's probability."""
    classes = rows["probs"].shape[1] if len(rows) else len(class_names)
    names = [class_names[i] if i < len(class_names) else str(i) for i in range(classes)]
    top_n = min(top_n, classes)
    header = ["index", "name", "label", "label_name"]
    for k in range(1, top_n + 1):
        header += [f"top{k}", f"top{k}_name", f"top{k}_probability"]
    header += [f"p_{name}" for name in names]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    top = ranked(rows["probs"], top_n) if len(rows) else np.zeros((0, top_n), int)
    for row, best in zip(rows, top, strict=True):
        label = int(row["label"])
        line = [int(row["index"]), name_of(row), "" if label < 0 else label,
                "" if label < 0 else names[label]]  # fmt: skip
        for k in best:
            line += [int(k), names[k], f"{float(row['probs'][k]):.6g}"]
        line += [f"{float(p):.6g}" for p in row["probs"]]
        writer.writerow(line)
        if buffer.tell() > 1 << 16:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
