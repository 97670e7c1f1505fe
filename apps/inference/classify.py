"""Classifying one image with a model: the use case behind the API's ``classify`` and the
model's classify page (one write path for both).

Answers from the warm path (``apps.inference.service``): no job, no stored image. Each
request counts on the model (``request_count``, ``last_used_at``) instead of leaving a
job row behind.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from django.db.models import F
from django.utils import timezone
from PIL import Image

from apps.core import permissions
from apps.inference import service
from apps.inference.service import InferenceError
from apps.mlmodels.models import TrainedModel

#: Default and largest ``top_n``.
DEFAULT_TOP_N, MAX_TOP_N = 5, 100


def classify(
    model: TrainedModel, user, *, image: bytes | None = None, stage: str = "val",
    index: int | None = None, top_n: int = DEFAULT_TOP_N, epoch: int | None = None,
    layers: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The ``top_n`` most probable classes of an uploaded ``image`` or of entry ``index`` of
    ``stage`` of the model's dataset (only a dataset ``user`` may see), by the snapshot of
    ``epoch``; with ``layers``, DIGITS' per-layer views. ``user`` may see ``model`` (the
    caller checked). ``InferenceError`` (its ``status`` and ``field``) otherwise."""
    shape = model.dataset.manifest["feature"]["shape"]
    if image is not None:
        array, shown = service.prepare_image(image, shape), {"source": "upload", "label": None}
    elif index is not None:
        array, shown = _entry(model, user, stage, index)
    else:
        raise InferenceError("Upload an image or give the number of a dataset entry.", 400, "image")
    prediction = service.infer(model, array[None], epoch=epoch, layers=layers)
    _count_use(model)
    names = model.dataset.manifest.get("label_names") or []
    answer = {
        "model": model.pk,
        "epoch": prediction.epoch,
        "top_n": top_n,
        "predictions": top_predictions(prediction.outputs[0], names, top_n),
        "input": {**shown, "image": png_data_url(array)},
        "cache_hit": prediction.cache_hit,
        "timings_ms": prediction.timings_ms,
    }
    if layers:
        answer["layers"] = layer_views(prediction)
    return answer


def top_predictions(probabilities: np.ndarray, names: list[str], n: int) -> list[dict]:
    """The ``n`` most probable classes, most probable first: index, label, probability."""
    probabilities = np.asarray(probabilities, dtype=np.float64).ravel()
    order = np.argsort(-probabilities, kind="stable")[: max(1, n)]
    label = lambda i: names[i] if i < len(names) else str(i)  # noqa: E731
    return [
        {"index": int(i), "label": label(int(i)), "probability": float(probabilities[i])}
        for i in order
    ]


def _entry(model: TrainedModel, user, stage: str, index: int) -> tuple[np.ndarray, dict]:
    from apps.datasets import shards

    if not permissions.can(user, permissions.VIEW, model.dataset):
        raise InferenceError("The model's dataset is not shared with you; upload an image.",
                             400, "index")  # fmt: skip
    try:
        features, label = shards.read_entry(model.dataset, stage, index)
    except IndexError as exc:
        raise InferenceError(str(exc), 400, "index") from None
    names = model.dataset.manifest.get("label_names") or []
    true = {"index": int(label), "name": names[int(label)] if int(label) < len(names) else None}
    return np.asarray(features), {"source": "entry", "stage": stage, "index": index, "label": true}


def _count_use(model: TrainedModel) -> None:
    TrainedModel.objects.filter(pk=model.pk).update(
        request_count=F("request_count") + 1, last_used_at=timezone.now()
    )


def png_data_url(array: np.ndarray) -> str:
    """An image array (HW or HWC; float arrays rescaled) as a ``data:image/png`` URL."""
    from apps.core.plugins.interfaces import features_to_image

    out = io.BytesIO()
    features_to_image(array).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _grid_url(images: dict[str, np.ndarray], name: str) -> str | None:
    """A grid the model process drew, re-encoded here; anything but a bounded 8-bit image
    (the process runs user code) is dropped."""
    grid = images.get(name)
    if grid is None or grid.dtype != np.uint8 or grid.ndim != 2 or max(grid.shape) > 1024:
        return None
    out = io.BytesIO()
    Image.fromarray(grid, mode="L").save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def layer_views(prediction: service.Prediction) -> list[dict[str, Any]]:
    """Each layer's figures with its weight and activation grids as PNG data URLs."""
    views = []
    for i, layer in enumerate(prediction.layers or []):
        row = {**layer, "activations": {**layer["activations"]}}
        row["activations"]["image"] = _grid_url(prediction.images, f"a{i}")
        if layer.get("weights"):
            row["weights"] = {**layer["weights"], "image": _grid_url(prediction.images, f"w{i}")}
        views.append(row)
    return views
