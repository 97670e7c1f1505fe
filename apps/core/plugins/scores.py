"""Agreement of a predicted segmentation mask with the ground truth: Dice and IoU per class.

One implementation for the views, the REST answer and anyone else comparing two masks.
"""

from __future__ import annotations

import numpy as np


def segmentation_scores(
    predicted: np.ndarray, truth: np.ndarray, classes: int | None = None
) -> list[dict]:
    """Per foreground class (1 .. classes-1): Dice, IoU and the pixel counts behind them.

    ``predicted`` and ``truth`` are ``(H, W)`` integer masks of class indices, 0 the
    background. Dice = 2·|P∩T| / (|P| + |T|), IoU = |P∩T| / |P∪T|; both are ``None`` for
    a class present in neither mask (there is nothing to agree on). ``classes`` defaults
    to one more than the largest index in either mask.
    """
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape:
        raise ValueError(
            f"the ground truth is {truth.shape[1]}×{truth.shape[0]} pixels, "
            f"the prediction {predicted.shape[1]}×{predicted.shape[0]}"
        )
    if classes is None:
        classes = int(max(predicted.max(initial=0), truth.max(initial=0))) + 1
    flat_p, flat_t = predicted.ravel().astype(np.int64), truth.ravel().astype(np.int64)
    counts_p = np.bincount(flat_p, minlength=classes)
    counts_t = np.bincount(flat_t, minlength=classes)
    both = np.bincount(flat_p[flat_p == flat_t], minlength=classes)
    scores = []
    for index in range(1, classes):
        p, t, i = int(counts_p[index]), int(counts_t[index]), int(both[index])
        union = p + t - i
        scores.append(
            {
                "index": index,
                "dice": 2 * i / (p + t) if p + t else None,
                "iou": i / union if union else None,
                "predicted_pixels": p,
                "true_pixels": t,
            }
        )
    return scores


def mean_score(scores: list[dict], key: str) -> float | None:
    """The mean of ``key`` ("dice" or "iou") over the classes where it is defined."""
    values = [s[key] for s in scores if s[key] is not None]
    return sum(values) / len(values) if values else None
