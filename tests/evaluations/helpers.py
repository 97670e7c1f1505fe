"""Helpers of the evaluation tests: a small real dataset, a model row, and an evaluation
finished through the worker's own publishing path (``apps.jobs.services.complete``)
with predictions written here — what a ``model.evaluate`` job would have written."""

from __future__ import annotations

import numpy as np

from apps.core.storage import get_store
from apps.datasets import shards
from apps.datasets.models import Dataset
from apps.evaluations import metrics, predictions, services
from apps.evaluations.models import Evaluation
from apps.jobs import services as jobs
from apps.jobs.models import Job
from apps.mlmodels.models import TrainedModel
from tests.mlmodels.helpers import digits

NAMES = [f"digit {i}" for i in range(10)]


def digits_dataset(owner, train: int = 300, val: int = 120, **fields) -> Dataset:
    """A ready dataset of scikit-learn's 8×8 digits, its NPY shards written here (no worker)."""
    images, labels = digits()
    job = Job.objects.create(owner=owner, name="digits", kind="dataset.build", status="done")
    stages = {}
    for stage, rows in (("train", range(train)), ("val", range(train, train + val))):
        writer = shards.StageWriter(get_store(), f"jobs/{job.pk}/", stage, 64, None)
        for i in rows:
            writer.add(images[i][:, :, None], int(labels[i]))
        writer.flush()
        stages[stage] = writer.summary()
    stages["test"] = {"count": 0, "shards": []}
    manifest = {
        "format": shards.NPY_FORMAT, "encoding": None, "type": "image-classification",
        "feature": {"shape": [8, 8, 1], "dtype": "uint8", "layout": "HWC"},
        "label": {"kind": "class"}, "label_names": NAMES, "shard_size": 64, "stages": stages,
        "error_count": 0, "errors": [],
    }  # fmt: skip
    values = {"name": "digits", "type": "image-classification", "status": "ready", **fields}
    return Dataset.objects.create(owner=owner, job=job, manifest=manifest, **values)


def val_labels(train: int = 300, val: int = 120) -> np.ndarray:
    return digits()[1][train : train + val]


def model_row(owner, dataset, name="lenet", **fields) -> TrainedModel:
    return TrainedModel.objects.create(
        owner=owner, dataset=dataset, name=name, status="ready", best_epoch=1,
        network={"source": "standard", "name": "lenet"}, **fields,
    )  # fmt: skip


def noisy_probs(labels: np.ndarray, classes: int = 10, seed: int = 0, right: float = 0.7):
    """Softmax-like rows, the true class on top for about ``right`` of them."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(labels), classes))
    hit = rng.random(len(labels)) < right
    known = labels >= 0
    logits[np.flatnonzero(hit & known), labels[hit & known]] += 4
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def finished_evaluation(
    owner, model, labels, probs, *, dataset=None, stage="val", names=(), top_n=5, **sharing
) -> Evaluation:
    """A done evaluation whose job published ``predictions.npy`` of these arrays."""
    source = "stage" if dataset is not None else "archive"
    job = Job.objects.create(
        owner=owner, name="evaluate", kind="model.evaluate", status="running", **sharing
    )
    evaluation = Evaluation.objects.create(
        owner=owner, name=f"eval {model.name}", model=model, epoch=1, source=source,
        dataset=dataset, stage=stage if dataset is not None else "", top_n=top_n, job=job,
        inputs={} if dataset is not None else {"archive_key": "k", "archive_name": "a.zip"},
        **sharing,
    )  # fmt: skip
    job.params = services._params(evaluation, 256)  # what evaluate() submits
    job.save(update_fields=["params"])
    table = predictions.table(np.arange(len(labels)), list(names), labels, probs)
    with get_store().staged(job.staging_prefix + predictions.NAME) as out:
        predictions.write(table, out)
    summary = metrics.summarize(np.asarray(labels), probs, top_n, NAMES)
    jobs.complete(job, {"summary": summary})
    evaluation.refresh_from_db()
    return evaluation


def stored_table(evaluation: Evaluation) -> np.ndarray:
    """The predictions file as published, read back from the store."""
    return predictions.read(get_store().get(evaluation.predictions_key))
