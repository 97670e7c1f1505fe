"""The figures of an evaluation, from its per-entry predictions (NumPy only).

Inputs are the arrays of ``apps.evaluations.predictions``: ``labels`` ``(n,)`` int, the
true class of each entry or ``-1`` where the source gave none, and ``probs`` ``(n, C)``
float, the network's output per entry. Figures that need a true class count only the
labelled entries. A class never predicted has precision 0, one never present recall 0
(scikit-learn's ``zero_division=0``), and F1 is 0 where precision and recall both are.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def ranked(probs: np.ndarray, top_n: int) -> np.ndarray:
    """``(n, top_n)`` class indices of each row, most probable first (ties: lower index)."""
    return np.argsort(-probs, axis=1, kind="stable")[:, :top_n]


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """``(classes, classes)`` counts: row = true class, column = predicted class."""
    flat = labels.astype(np.int64) * classes + predicted.astype(np.int64)
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def per_class(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of every class of a confusion matrix."""
    hits = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def _rate(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if hits.size else None


def summarize(
    labels: np.ndarray, probs: np.ndarray, top_n: int, names: list[str]
) -> dict[str, Any]:
    """The summary an evaluation stores (JSON-able).

    ``{"count", "labelled", "top_n", "accuracy", "top_n_accuracy", "confusion": [[int]],
    "classes": [{"index", "name", "precision", "recall", "f1", "support", "predicted"}]}``;
    accuracies are None without labelled entries.
    """
    classes = probs.shape[1]
    top_n = min(top_n, classes)
    top = ranked(probs, top_n)
    known = labels >= 0
    truth, guesses = labels[known], top[known]
    matrix = confusion(truth, guesses[:, 0], classes)
    figures = per_class(matrix)
    predicted_all = np.bincount(top[:, 0], minlength=classes)
    return {
        "count": int(len(labels)),
        "labelled": int(known.sum()),
        "top_n": int(top_n),
        "accuracy": _rate(guesses[:, 0] == truth),
        "top_n_accuracy": _rate((guesses == truth[:, None]).any(axis=1)),
        "confusion": matrix.tolist(),
        "classes": [
            {
                "index": i,
                "name": names[i] if i < len(names) else str(i),
                "precision": float(figures["precision"][i]),
                "recall": float(figures["recall"][i]),
                "f1": float(figures["f1"][i]),
                "support": int(figures["support"][i]),
                "predicted": int(predicted_all[i]),
            }
            for i in range(classes)
        ],
    }
