"""The evaluation figures equal scikit-learn's on the same predictions; the predictions
file and its CSV hold exactly the arrays written."""

import csv
import io

import numpy as np
import pytest

from apps.evaluations import metrics, predictions
from tests.evaluations.helpers import NAMES, noisy_probs


def sklearn_figures(labels, probs, top_n):
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        top_k_accuracy_score,
    )

    known = labels >= 0
    truth, probs = labels[known], probs[known]
    guess = probs.argmax(axis=1)
    classes = list(range(probs.shape[1]))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, guess, labels=classes, zero_division=0
    )
    return {
        "accuracy": accuracy_score(truth, guess),
        "top_n_accuracy": top_k_accuracy_score(truth, probs, k=top_n, labels=classes),
        "confusion": confusion_matrix(truth, guess, labels=classes),
        "precision": precision, "recall": recall, "f1": f1, "support": support,
    }  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_figures_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, 500)
    labels[rng.random(500) < 0.1] = -1  # some entries without a true class
    probs = noisy_probs(labels, seed=seed, right=0.6)
    probs[:, 7] *= 0.01  # a class (almost) never predicted: precision 0 by convention
    summary = metrics.summarize(labels, probs, 3, NAMES)
    expected = sklearn_figures(labels, probs, 3)

    assert summary["count"] == 500 and summary["labelled"] == int((labels >= 0).sum())
    assert summary["accuracy"] == pytest.approx(expected["accuracy"])
    assert summary["top_n_accuracy"] == pytest.approx(expected["top_n_accuracy"])
    assert np.array_equal(summary["confusion"], expected["confusion"])
    for name in ("precision", "recall", "f1"):
        got = [c[name] for c in summary["classes"]]
        assert got == pytest.approx(list(expected[name])), name
    assert [c["support"] for c in summary["classes"]] == list(expected["support"])
    assert [c["name"] for c in summary["classes"]] == NAMES
    assert [c["predicted"] for c in summary["classes"]] == list(
        np.bincount(probs.argmax(axis=1), minlength=10)
    )


def test_without_labels_there_is_no_accuracy():
    labels = np.full(20, -1)
    summary = metrics.summarize(labels, noisy_probs(labels), 5, NAMES)
    assert summary["accuracy"] is None and summary["top_n_accuracy"] is None
    assert summary["labelled"] == 0 and sum(c["predicted"] for c in summary["classes"]) == 20


def test_predictions_file_and_csv_hold_the_arrays():
    labels = np.array([3, -1, 0, 9])
    probs = noisy_probs(labels, seed=4)
    names = ["a/1.png", "b/ü.png", "c.png", "d d.png"]
    out = io.BytesIO()
    predictions.write(predictions.table(np.arange(4), names, labels, probs), out)
    table = predictions.read(out.getvalue())
    assert np.array_equal(table["label"], labels) and np.array_equal(table["probs"], probs)
    assert [predictions.name_of(r) for r in table] == names

    rows = list(csv.DictReader(io.StringIO("".join(predictions.csv_lines(table, NAMES, 2)))))
    assert [r["name"] for r in rows] == names
    assert [r["label"] for r in rows] == ["3", "", "0", "9"]
    assert [r["label_name"] for r in rows] == ["digit 3", "", "digit 0", "digit 9"]
    order = np.argsort(-probs, axis=1)
    assert [int(r["top1"]) for r in rows] == list(order[:, 0])
    assert [int(r["top2"]) for r in rows] == list(order[:, 1])
    assert [r["top1_name"] for r in rows] == [NAMES[i] for i in order[:, 0]]
    for row, p in zip(rows, probs, strict=True):
        assert [float(row[f"p_{n}"]) for n in NAMES] == pytest.approx(p, rel=1e-5)


def test_csv_with_more_asked_than_classes():
    labels = np.array([0, 1])
    table = predictions.table(np.arange(2), [], labels, noisy_probs(labels, classes=2))
    rows = list(csv.reader(io.StringIO("".join(predictions.csv_lines(table, ["a", "b"], 5)))))
    assert rows[0][4:] == ["top1", "top1_name", "top1_probability", "top2", "top2_name",
                           "top2_probability", "p_a", "p_b"]  # fmt: skip
    assert all(len(row) == len(rows[0]) for row in rows)
