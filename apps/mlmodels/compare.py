"""Comparing trained models: each one's best epoch at a glance, and their curves side by side.

A model's figures come from its training result (``TrainedModel.result["epochs"]``,
one row per finished epoch: ``loss``, ``accuracy`` and, on validated epochs,
``val_loss``, ``val_accuracy``, ``val_top5`` for classification; ``val_dice``,
``val_mean_iou``, ... for segmentation — see ``apps.mlmodels.tasks``). Its *best*
epoch is the one training chose (``best_epoch``: the highest of its task's
``best_metric``, then lowest validation loss), else its last; that figure is the
model's ``score``. Models without a result (still training, failed before the end) show
no figures and sort last.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.urls import reverse

from apps.mlmodels import tasks
from apps.mlmodels.models import TrainedModel

#: What the model list sorts by: query value → (label, key of ``summary``, higher is better).
SORTS: dict[str, tuple[str, str, bool]] = {
    "created": ("Newest", "created", True),
    "val_accuracy": ("Best validation accuracy", "val_accuracy", True),
    "val_dice": ("Best validation Dice (segmentation)", "val_dice", True),
    "val_loss": ("Lowest validation loss", "val_loss", False),
    "loss": ("Lowest training loss", "loss", False),
    "name": ("Name", "name", False),
}
#: The curves the compare page may draw: result key → title (each task's ``curves``).
CURVES = {key: title for task in tasks.TASKS.values() for key, title in task.curves.items()}
#: The validation figures the list and compare tables show, as columns: key → title.
SCORE_COLUMNS = {"val_accuracy": "Val accuracy", "val_dice": "Val Dice"}
#: Solver options shown in the comparison (the rest differ rarely and are in each model's page).
SOLVER_KEYS = (
    "epochs", "batch_size", "base_lr", "policy", "optimizer", "momentum", "weight_decay",
    "seed", "mean_subtraction",
)  # fmt: skip
#: Fewest and most models one comparison takes.
MIN_COMPARED, MAX_COMPARED = 2, 12


def network_name(model: TrainedModel) -> str:
    network = model.network or {}
    source = network.get("source", "standard")
    if source == "standard":
        return network.get("name", "lenet")
    if source == "previous":
        return f"fine-tuned from model #{network.get('previous_model')}"
    return {"custom": "custom code", "upload": "uploaded model"}.get(source, source)


def summary(model: TrainedModel) -> dict[str, Any]:
    """The figures of ``model``'s best epoch (None where it has none), and what it ran with."""
    epochs = (model.result or {}).get("epochs") or []
    best = next((e for e in epochs if e.get("epoch") == model.best_epoch), None)
    if best is None and epochs:
        best = epochs[-1]
    best = best or {}
    task = tasks.task_of(model.dataset.manifest)
    return {
        "task": task.name,
        "score": best.get(task.best_metric),
        "model": model,
        "name": model.name,
        "created": model.created_at,
        "network": network_name(model),
        "solver": {key: (model.solver or {}).get(key) for key in SOLVER_KEYS},
        "epochs_done": len(epochs),
        "best_epoch": best.get("epoch"),
        "val_accuracy": best.get("val_accuracy"),
        "val_dice": best.get("val_dice"),
        "val_mean_iou": best.get("val_mean_iou"),
        "val_loss": best.get("val_loss"),
        "loss": best.get("loss"),
        "accuracy": best.get("accuracy"),
    }


def ranked(models: Iterable[TrainedModel], sort: str) -> list[dict[str, Any]]:
    """``summary`` of each model, ordered by ``sort`` (a ``SORTS`` key); missing figures last."""
    _, key, higher_is_better = SORTS[sort]
    rows = [summary(m) for m in models]
    present = [r for r in rows if r[key] is not None]
    missing = [r for r in rows if r[key] is None]
    if key == "name":
        present.sort(key=lambda r: r["name"].casefold())
    else:
        present.sort(key=lambda r: r[key], reverse=higher_is_better)
    return present + missing


def best_of(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row with the highest score — validation accuracy, Dice, ... as its task picks the
    best epoch — (lowest validation loss on a tie); None when the rows' tasks differ."""
    scored = [r for r in rows if r["score"] is not None]
    if not scored or len({r["task"] for r in scored}) > 1:
        return None
    return max(scored, key=lambda r: (r["score"], -(r["val_loss"] or 0.0)))


def score_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``SCORE_COLUMNS`` the rows have figures for (validation accuracy always); each row
    gets its values as ``scores``, in the same order."""
    columns = [
        (key, title) for key, title in SCORE_COLUMNS.items()
        if key == "val_accuracy" or any(r.get(key) is not None for r in rows)
    ]  # fmt: skip
    for row in rows:
        row["scores"] = [(key, row.get(key)) for key, _ in columns]
    return columns


def differing_solver_keys(rows: list[dict[str, Any]]) -> list[str]:
    """The solver options whose values are not the same for every compared model."""
    return [key for key in SOLVER_KEYS if len({repr(r["solver"][key]) for r in rows}) > 1]


def curves(models: Iterable[TrainedModel]) -> dict[str, Any]:
    """Per-epoch series for the compare charts: ``{"curves": {key: title}, "models": [{"id",
    "name", "url", "series": {key: [[epoch, value], ...]}}]}`` (JSON for the page's script)."""
    models = list(models)
    wanted = {tasks.task_of(m.dataset.manifest).name for m in models}
    shown = {
        key: title
        for task in tasks.TASKS.values() if task.name in wanted
        for key, title in task.curves.items()
    }  # fmt: skip
    out = []
    for model in models:
        epochs = (model.result or {}).get("epochs") or []
        series = {
            key: [[e["epoch"], e[key]] for e in epochs if e.get(key) is not None] for key in shown
        }
        out.append(
            {
                "id": model.pk,
                "name": model.name,
                "url": reverse("mlmodels:detail", args=[model.pk]),
                "series": series,
            }
        )
    return {"curves": shown, "models": out}


#: The figures the parallel-coordinates view can colour and end on: summary key → title.
PARALLEL_METRICS = {
    "val_accuracy": "Val accuracy", "val_dice": "Val Dice", "val_loss": "Val loss",
    "loss": "Train loss",
}  # fmt: skip


def parallel(rows: list[dict[str, Any]], differing: list[str]) -> dict[str, Any]:
    """The sweep view: one axis per differing solver option (numbers on a scale, anything
    else as categories) and one per metric the models have; a line per model."""
    axes = []
    for key in differing:
        values = [r["solver"][key] for r in rows if r["solver"][key] is not None]
        numeric = bool(values) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )
        positive = numeric and min(values) > 0
        axes.append({"key": key, "title": key.replace("_", " "), "numeric": numeric,
                     "log": positive and max(values) / min(values) >= 100})  # fmt: skip
    metrics = [
        {"key": key, "title": title} for key, title in PARALLEL_METRICS.items()
        if any(r.get(key) is not None for r in rows)
    ]  # fmt: skip
    models = [
        {
            "id": r["model"].pk, "name": r["name"],
            "values": {**{a["key"]: r["solver"][a["key"]] for a in axes},
                       **{m["key"]: r.get(m["key"]) for m in metrics}},
        }
        for r in rows
    ]  # fmt: skip
    return {"axes": axes, "metrics": metrics, "models": models}
