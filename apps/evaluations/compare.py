"""Evaluation figures of models side by side (the model compare page), and the pairs of
evaluations that classified the same entries ("A right, B wrong")."""

from __future__ import annotations

from typing import Any

from apps.evaluations.models import Evaluation


def _where(evaluation: Evaluation) -> tuple:
    """What was evaluated: a dataset's stage, or the uploaded files."""
    if evaluation.source == Evaluation.Source.STAGE:
        return ("stage", evaluation.dataset_id, evaluation.stage)
    inputs = evaluation.inputs
    return (evaluation.source, inputs.get("archive_key"), inputs.get("list_key"))


def _label(evaluation: Evaluation) -> str:
    if evaluation.source == Evaluation.Source.STAGE:
        return f"{evaluation.dataset.name} · {evaluation.stage}"
    inputs = evaluation.inputs
    return " + ".join(filter(None, [inputs.get("archive_name"), inputs.get("list_name")]))


def figures(models: list, user) -> dict[str, Any]:
    """``{"models": [...], "rows": [{"label", "cells": [evaluation or None per model]}],
    "pairs": [(a, b)]}``: the newest finished evaluation of each model per evaluated
    source that ``user`` may see; pairs of models evaluated on the same entries."""
    found = (
        Evaluation.objects.filter(model__in=models, status=Evaluation.Status.DONE)
        .select_related("dataset", "model")
        .visible_to(user)
        .order_by("-created_at", "-id")
    )
    newest: dict[tuple, dict[int, Evaluation]] = {}
    labels: dict[tuple, str] = {}
    for evaluation in found:
        where = _where(evaluation)
        newest.setdefault(where, {}).setdefault(evaluation.model_id, evaluation)
        labels.setdefault(where, _label(evaluation))
    rows, pairs = [], []
    for where, by_model in newest.items():
        cells = [by_model.get(m.pk) for m in models]
        rows.append({"label": labels[where], "cells": cells})
        present = [e for e in cells if e is not None]
        pairs += [(a, b) for a in present for b in present if a.pk != b.pk and a.has_labels]
    return {"models": models, "rows": rows, "pairs": pairs}
