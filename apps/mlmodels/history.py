"""A model's finished epochs, while it trains and after a run that stopped early.

A training job reports each finished epoch as an ``epoch`` event (``JobContext.epoch``);
the result of a run that ends well lists them all (``TrainedModel.result["epochs"]``).
A run that is aborted or fails keeps what it finished: its epochs are read back from the
events into the model's result (``keep_history``), so the epochs table, the models list
and the compare page show them like a finished run's.
"""

from __future__ import annotations

from typing import Any

from apps.jobs.models import JobEvent
from apps.mlmodels import snapshots, tasks
from apps.mlmodels.models import TrainedModel


def reported_epochs(job_id: int) -> list[dict[str, Any]]:
    """The epochs a job reported, in order (a retried attempt's repeat replaces the first)."""
    rows: dict[int, dict[str, Any]] = {}
    for data in (
        JobEvent.objects.filter(job_id=job_id, type="epoch")
        .order_by("seq")
        .values_list("data", flat=True)
    ):
        rows[int(data["epoch"])] = {**data.get("row", {}), "epoch": int(data["epoch"])}
    return [rows[n] for n in sorted(rows)]


def recorded_epochs(model: TrainedModel) -> list[dict[str, Any]]:
    """The result's epochs, then those the model's current job reported since."""
    earlier = list((model.result or {}).get("epochs") or [])
    if model.job_id is None or model.status == TrainedModel.Status.READY:
        return earlier
    new = reported_epochs(model.job_id)
    if not new:
        return earlier
    first = new[0]["epoch"]
    return [e for e in earlier if e.get("epoch", 0) < first] + new


def steps_per_epoch(job_id: int) -> int | None:
    point = (
        JobEvent.objects.filter(job_id=job_id, type="metric", data__series="steps_per_epoch")
        .order_by("-seq")
        .values_list("data", flat=True)
        .first()
    )
    return int(point["value"]) if point else None


def keep_history(model: TrainedModel) -> dict[str, Any]:
    """The result of a run that stopped early: what it finished, its snapshots, its best."""
    epochs = recorded_epochs(model)
    task = tasks.task_of(model.dataset.manifest)
    return {
        **(model.result or {}),
        "epochs": epochs,
        # A diverged epoch's loss is reported as None (not finite): never the best.
        "best_epoch": task.best_epoch([e for e in epochs if e.get("loss") is not None]),
        "task": task.name,
        "snapshots": snapshots.epochs(model.pk),
        "steps_per_epoch": (model.result or {}).get("steps_per_epoch")
        or steps_per_epoch(model.job_id),
    }


def may_resume(model: TrainedModel, saved: list[int]) -> bool:
    """Resume is offered for a run that stopped early (aborted, failed) with a snapshot
    to continue from; a finished or running model has nothing to resume."""
    stopped = model.status in (TrainedModel.Status.ABORTED, TrainedModel.Status.ERROR)
    return stopped and bool(saved) and not (model.job and model.job.is_active)
