"""Creating, resuming, deleting models, and classifying images with them."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from django.db import transaction

from apps.core.storage import get_store
from apps.datasets.models import Dataset
from apps.jobs import services as jobs
from apps.jobs.models import Job
from apps.mlmodels import snapshots
from apps.mlmodels.models import TrainedModel


class ModelError(Exception):
    """The request cannot be done as asked; the message says why (400/409)."""


def _train_params(model: TrainedModel, resume: bool) -> dict[str, Any]:
    dataset = model.dataset
    return {
        "model_id": model.pk,
        "dataset": {"id": dataset.pk, "prefix": dataset.data_prefix, "manifest": dataset.manifest},
        "network": model.network,
        "solver": model.solver,
        "gpus": model.gpus,
        "resume": resume,
    }


def create(
    *, owner, dataset: Dataset, name: str, network: dict, solver: dict, gpus: dict | None = None,
    description: str = "", team=None, visibility: str = "private",
    batch_sizes: list[int] | None = None, base_lrs: list[float] | None = None,
) -> list[TrainedModel]:  # fmt: skip
    """Create one model per (batch size × learning rate) combination and start training each.

    ``network`` and ``solver`` are validated (``apps.mlmodels.params``). More
    than one combination is a sweep: the models share a ``sweep`` id.
    """
    if dataset.status != Dataset.Status.READY:
        raise ModelError(
            f"Dataset “{dataset.name}” is {dataset.get_status_display().lower()}, not ready."
        )
    if dataset.manifest.get("label", {}).get("kind") != "class":
        raise ModelError("Only classification datasets can be trained on so far.")
    if dataset.manifest.get("stages", {}).get("train", {}).get("count", 0) == 0:
        raise ModelError("The dataset has no training entries.")
    batch_sizes = batch_sizes or [solver["batch_size"]]
    base_lrs = base_lrs or [solver["base_lr"]]
    combos = list(itertools.product(batch_sizes, base_lrs))
    sweep = uuid.uuid4().hex if len(combos) > 1 else ""
    created = []
    with transaction.atomic():
        for batch_size, base_lr in combos:
            label = f"{name} (batch {batch_size}, lr {base_lr:g})" if sweep else name
            model = TrainedModel.objects.create(
                owner=owner, team=team, visibility=visibility, name=label, description=description,
                dataset=dataset, network=network, gpus=gpus or {}, sweep=sweep,
                solver={**solver, "batch_size": batch_size, "base_lr": base_lr},
            )  # fmt: skip
            _start(model, resume=False)
            created.append(model)
    return created


def _start(model: TrainedModel, resume: bool) -> Job:
    job = jobs.submit(
        owner=model.owner, kind="model.train", name=f"Train “{model.name}”",
        team=model.team, visibility=model.visibility, params=_train_params(model, resume),
    )  # fmt: skip
    model.job = job
    model.status = TrainedModel.Status.TRAINING
    model.save(update_fields=["job", "status"])
    return job


def resume(model: TrainedModel) -> Job:
    """Continue an aborted or failed training run from its last snapshot."""
    if model.job is not None and model.job.is_active:
        raise ModelError("The model is still training.")
    if not snapshots.epochs(model.pk):
        raise ModelError("The model has no snapshot to resume from; clone it to start again.")
    with transaction.atomic():
        return _start(model, resume=True)


def delete(model: TrainedModel) -> None:
    if model.job is not None and model.job.is_active:
        raise jobs.JobStateError("The model is still training; abort it first.")
    job, model_id = model.job, model.pk
    with transaction.atomic():
        model.delete()
        if job is not None:
            jobs.delete(job)
        transaction.on_commit(lambda: snapshots.delete_all(model_id))


def classify(
    model: TrainedModel, user, image: bytes, epoch: int | None = None, wait: float = 120
) -> Job:
    """Submit a ``model.infer`` job for ``image`` and wait up to ``wait`` s for it to finish."""
    saved = snapshots.epochs(model.pk)
    if not saved:
        raise ModelError("The model has no snapshot yet.")
    epoch = epoch or model.best_epoch or saved[-1]
    if epoch not in saved:
        raise ModelError(
            f"There is no snapshot of epoch {epoch}; saved: {', '.join(map(str, saved))}."
        )
    key = f"uploads/{uuid.uuid4().hex}/image"
    get_store().put(key, image)
    job = jobs.submit(
        owner=user, kind="model.infer", name=f"Classify with “{model.name}”",
        params={"model_id": model.pk, "epoch": epoch, "image_key": key,
                "train_params": _train_params(model, resume=False)},
    )  # fmt: skip
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if not job.is_active:
            break
        time.sleep(0.2)
    if not job.is_active:
        get_store().delete(key)
    return job
