"""Evaluating models: submitting an evaluation, reading its predictions, deleting it.

The one write path of "classify many" (``evaluate``), for the evaluate page and the API
alike, and the queries over an evaluation's per-entry predictions that its pages, its API
and the compare page share.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Any

import numpy as np
from django.db import transaction

from apps.core import permissions, uploads
from apps.core.storage import get_store
from apps.datasets.models import Dataset
from apps.evaluations import predictions
from apps.evaluations.models import Evaluation
from apps.jobs import services as jobs
from apps.mlmodels import services as models
from apps.mlmodels import snapshots
from apps.mlmodels.models import TrainedModel
from apps.mlmodels.options import CUSTOM_SOURCES

KIND = "model.evaluate"


class EvaluationError(Exception):
    """The request cannot be done as asked; ``field`` names the input at fault (400)."""

    def __init__(self, message: str, field: str = "model"):
        super().__init__(message)
        self.field = field

    @property
    def detail(self) -> dict[str, list[str]]:
        return {self.field: [str(self)]}


class NotReady(Exception):
    """The evaluation has no predictions (yet, or any more): still running or failed (409)."""


def saved_epoch(model: TrainedModel, epoch: int | None) -> int:
    """``epoch`` (default: the best, else the last saved) if its snapshot exists."""
    saved = snapshots.epochs(model.pk)
    if not saved:
        raise EvaluationError("The model has no snapshot yet.", "model")
    epoch = epoch or model.best_epoch or saved[-1]
    if epoch not in saved:
        listed = ", ".join(map(str, saved))
        raise EvaluationError(f"There is no snapshot of epoch {epoch}; saved: {listed}.", "epoch")
    return epoch


def _inputs(request: dict[str, Any], user) -> dict[str, Any]:
    """The uploads of the request as keys of ``user``'s (files sent now are stored)."""
    found = {}
    for field in ("archive", "list"):
        upload = request.get(field)
        if upload is not None:
            ref = uploads.store_upload(upload, user)
            found[f"{field}_key"], found[f"{field}_name"] = ref["upload_key"], ref["name"]
        elif request.get(f"{field}_key"):
            key = request[f"{field}_key"]
            found[f"{field}_key"], found[f"{field}_name"] = key, key.rsplit("/", 1)[-1]
    return found


def _title(model: TrainedModel, request: dict[str, Any], inputs: dict[str, Any]) -> str:
    if request.get("name"):
        return request["name"]
    if request["source"] == Evaluation.Source.STAGE:
        return f"{model.name} on {request['dataset'].name} · {request['stage']}"
    return f"{model.name} on {inputs.get('archive_name') or inputs.get('list_name')}"


def evaluate(user, request: dict[str, Any]) -> Evaluation:
    """Start evaluating: ``request`` is ``EvaluateRequest``'s validated data.

    Raises ``EvaluationError`` for a model without the snapshot asked for, or one whose
    network is custom code ``user`` may not run.
    """
    model: TrainedModel = request["model"]
    if model.network.get("source") in CUSTOM_SOURCES and not permissions.can_run_custom_code(user):
        raise EvaluationError(models.CUSTOM_CODE_REFUSED, "model")
    epoch = saved_epoch(model, request.get("epoch"))
    inputs = _inputs(request, user)
    dataset = request.get("dataset") if request["source"] == Evaluation.Source.STAGE else None
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            owner=user, team=request.get("team"), visibility=request["visibility"],
            name=_title(model, request, inputs)[:200], model=model, epoch=epoch,
            source=request["source"], dataset=dataset,
            stage=request["stage"] if dataset else "", inputs=inputs, top_n=request["top_n"],
        )  # fmt: skip
        evaluation.job = jobs.submit(
            owner=user, kind=KIND, name=f"Evaluate “{model.name}”",
            team=evaluation.team, visibility=evaluation.visibility,
            params=_params(evaluation, request["batch_size"]),
        )  # fmt: skip
        evaluation.save(update_fields=["job"])
    return evaluation


def _params(evaluation: Evaluation, batch_size: int) -> dict[str, Any]:
    dataset = evaluation.dataset
    return {
        "evaluation_id": evaluation.pk,
        "model_id": evaluation.model_id,
        "epoch": evaluation.epoch,
        "train_params": models.inference_params(evaluation.model),
        "source": evaluation.source,
        "stage": evaluation.stage,
        "dataset": dataset
        and {"id": dataset.pk, "prefix": dataset.data_prefix, "manifest": dataset.manifest},
        "archive_key": evaluation.inputs.get("archive_key"),
        "list_key": evaluation.inputs.get("list_key"),
        "top_n": evaluation.top_n,
        "batch_size": batch_size,
    }


def delete(evaluation: Evaluation) -> None:
    """Delete an evaluation that has ended, with its job (and so its predictions)."""
    job = evaluation.job
    if job is not None and job.is_active:
        raise jobs.JobStateError("The evaluation is still running; abort its job first.")
    with transaction.atomic():
        evaluation.delete()
        if job is not None:
            jobs.delete(job)


def update_sharing(evaluation: Evaluation) -> None:
    """Whoever sees an evaluation sees its job (and so its log)."""
    jobs.share_like(evaluation.job_id, evaluation)


# --- reading predictions ----------------------------------------------------------------
_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()
_CACHE_LOCK = Lock()
#: Bytes of predictions kept in a web process's memory at most (the newest read first).
CACHE_BYTES = 256 * 2**20


def rows(evaluation: Evaluation) -> np.ndarray:
    """The evaluation's per-entry predictions (``apps.evaluations.predictions``).

    Published artifacts never change, so the files read last are kept in memory (up to
    ``CACHE_BYTES``): paging through the entries reads the file once. ``NotReady`` while
    there is none.
    """
    key = evaluation.predictions_key
    if evaluation.status != Evaluation.Status.DONE or not key:
        raise NotReady(f"The evaluation has no predictions (it is {evaluation.status}).")
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    table = predictions.read(get_store().get(key))
    table.flags.writeable = False
    with _CACHE_LOCK:
        _CACHE[key] = table
        while sum(t.nbytes for t in _CACHE.values()) > CACHE_BYTES and len(_CACHE) > 1:
            _CACHE.popitem(last=False)
        if table.nbytes > CACHE_BYTES:
            _CACHE.pop(key, None)
    return table


def top_per_class(evaluation: Evaluation, per_class: int) -> list[dict[str, Any]]:
    """DIGITS' "top N images per class": for each class, the ``per_class`` entries the
    network gives the highest probability of that class, most confident first."""
    table = rows(evaluation)
    found = []
    for index, name in enumerate(evaluation.class_names):
        scores = table["probs"][:, index]
        best = np.argsort(-scores, kind="stable")[:per_class]
        found.append({"index": index, "name": name, "positions": best.tolist()})
    return found


def versus(a: Evaluation, b: Evaluation) -> np.ndarray:
    """Positions of the entries ``a`` classified right and ``b`` wrong (same entries)."""
    if not a.same_entries_as(b):
        raise EvaluationError(
            "The two evaluations did not classify the same entries (same dataset stage, or "
            "the same uploaded files).",
            "other",
        )
    first, second = rows(a), rows(b)
    truth = first["label"]
    right = first["probs"].argmax(axis=1) == truth
    wrong = second["probs"].argmax(axis=1) != truth
    return np.flatnonzero(right & wrong & (truth >= 0))


def entry_rows(evaluation: Evaluation, positions) -> list[dict[str, Any]]:
    """What the entries page and API show of each row at ``positions`` of the predictions:
    ``{"position", "index", "name", "label", "label_name", "predicted", "predicted_name",
    "correct", "top": [{"index", "label", "probability"}]}`` (label None where unknown)."""
    table, names = rows(evaluation), evaluation.class_names
    found = []
    for position in positions:
        row = table[int(position)]
        top = np.argsort(-row["probs"], kind="stable")[: evaluation.top_n]
        label = int(row["label"])
        best = int(top[0])
        found.append(
            {
                "position": int(position),
                "index": int(row["index"]),
                "name": predictions.name_of(row),
                "label": None if label < 0 else label,
                "label_name": None if label < 0 else names[label],
                "predicted": best,
                "predicted_name": names[best],
                "correct": None if label < 0 else label == best,
                "top": [
                    {"index": int(k), "label": names[k], "probability": float(row["probs"][k])}
                    for k in top
                ],
            }
        )
    return found


# --- evaluation jobs, seen through the job API (registered in apps.evaluations.kinds) ----
def clone_job(job, user):
    """Cloning an evaluation job is evaluating again, as ``user``: with the rights a new
    evaluation needs (the model and dataset visible to them, the uploads their own)."""
    from apps.evaluations.requests import EvaluateRequest

    evaluation = Evaluation.objects.filter(job=job).visible_to(user).first()
    if evaluation is None:
        raise jobs.CloneRefused("The evaluation of this job is not available any more.")
    params = job.params
    data = {
        "model": evaluation.model_id, "source": evaluation.source, "epoch": evaluation.epoch,
        "top_n": evaluation.top_n, "batch_size": params.get("batch_size", 256),
        **({"dataset": evaluation.dataset_id, "stage": evaluation.stage}
           if evaluation.dataset_id else {}),
        **{k: v for k in ("archive_key", "list_key") if (v := params.get(k))},
    }  # fmt: skip
    request = EvaluateRequest(data=data, context={"user": user})
    if not request.is_valid():
        raise jobs.CloneRefused(f"Cannot evaluate again: {dict(request.errors)}")
    try:
        return evaluate(user, request.validated_data).job
    except EvaluationError as exc:
        raise jobs.CloneRefused(str(exc)) from None


def params_shown(params: dict[str, Any], user) -> dict[str, Any]:
    """The job's params without the manifests of datasets ``user`` may not see."""
    shown = dict(params)
    if isinstance(params.get("train_params"), dict):
        shown["train_params"] = models.training_params_shown(params["train_params"], user)
    dataset = params.get("dataset")
    if isinstance(dataset, dict) and set(dataset) > {"id"} and not _may_see(user, dataset):
        shown["dataset"] = {"id": dataset.get("id")}
    return shown


def _may_see(user, dataset: dict) -> bool:
    return Dataset.objects.filter(pk=dataset.get("id")).visible_to(user).exists()
