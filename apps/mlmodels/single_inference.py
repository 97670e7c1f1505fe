"""Testing a model on inputs chosen with its data plugin's inference form (DIGITS' "Test").

One path for the Test page and ``POST /api/v1/models/<id>/infer/``:

1. the dataset type's ``get_inference_form()`` validates what the user sent;
2. the type, created with the dataset's options updated by the form's cleaned data and
   ``is_inference_db=True``, lists ``itemize_entries("inference")`` and encodes each
   with ``encode_entry`` — a ``DatasetRecord`` entry is read from the built dataset;
3. the warm inference service (``apps.inference.service.predict``) runs the network;
4. the model's task (``apps.mlmodels.tasks``) turns each raw output into its answer.

Steps 1 and 2 parse untrusted files (DICOM, contours) with plugin code: they run on a
small thread pool with a time limit, never on the request's own thread, and at most
``MAX_INPUTS`` entries are encoded. Views (``apps.core.plugins.Visualization``) then
render the results on the page; the API answers with ``api_answer``.
"""

from __future__ import annotations

import concurrent.futures
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django import forms
from django.conf import settings
from django.db import close_old_connections
from PIL import Image

from apps.core import permissions
from apps.core.plugins import INFERENCE, DatasetRecord, EntryError, catalog
from apps.mlmodels import tasks

log = logging.getLogger(__name__)

#: Inputs one request may hold (an inference form choosing a whole folder is cut here).
MAX_INPUTS = 16
#: Threads reading inputs, per web process: parsing waits for one when all are busy.
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="infer-read")


class InferenceInputError(Exception):
    """The inputs cannot be used; ``errors`` maps form fields (``"__all__"``) to messages."""

    def __init__(self, errors: dict[str, list[str]], status: int = 400, timed_out=False):
        super().__init__("; ".join(m for ms in errors.values() for m in ms))
        self.errors, self.status = errors, status
        #: The form may still be validating on the pool: do not render it.
        self.timed_out = timed_out


@dataclass
class Result:
    """One input and what the model made of it."""

    input_id: str
    features: np.ndarray
    ground_truth: Any
    output_data: dict[str, Any] = field(default_factory=dict)


def data_type(model):
    """The model's dataset type (``DataIngestion`` subclass), or None if its plugin is gone."""
    try:
        return catalog.get_data_ingestion(model.dataset.type)
    except LookupError:
        return None


def inference_form_class(model) -> type[forms.Form] | None:
    """The inference form of the model's dataset type, or None when it has none."""
    ingestion = data_type(model)
    return ingestion.get_inference_form() if ingestion else None


def read_timeout() -> float:
    return float(settings.DIGITS_INFERENCE_READ_TIMEOUT)


def read_inputs(model, user, form: forms.Form) -> list[Result]:
    """Validate ``form`` and encode its inputs, on the reading pool (bounded in time).

    ``InferenceInputError`` naming the form's fields when they are wrong.
    """
    future = _pool.submit(_read_in_pool, model, user, form)
    try:
        return future.result(timeout=read_timeout())
    except concurrent.futures.TimeoutError:
        raise InferenceInputError(
            {"__all__": [f"Reading the input took longer than {read_timeout():g} s."]},
            422,
            timed_out=True,
        ) from None


def _read_in_pool(model, user, form: forms.Form) -> list[Result]:
    # A pool thread's database connection is its own: close it when it has aged out, as
    # the request cycle does for the request's thread.
    close_old_connections()
    try:
        return _read(model, user, form)
    finally:
        close_old_connections()


def _read(model, user, form: forms.Form) -> list[Result]:
    if not form.is_valid():
        raise InferenceInputError({k: list(v) for k, v in form.errors.items()})
    options = {**(model.dataset.options or {}), **form.cleaned_data}
    ingestion = data_type(model)(is_inference_db=True, **options)
    try:
        entries = ingestion.itemize_entries(INFERENCE)[: MAX_INPUTS + 1]
        if len(entries) > MAX_INPUTS:
            raise EntryError(f"The input holds more than {MAX_INPUTS} entries.")
        if not entries:
            raise EntryError("The input holds no entry to test.")
        return [_encoded(model, user, ingestion, entry) for entry in entries]
    except EntryError as exc:
        raise InferenceInputError({"__all__": [str(exc)]}) from None
    except Exception as exc:  # the plugin's bug: reported as such, not a server error
        log.exception("dataset type %s failed to read an inference input", model.dataset.type)
        message = f"The dataset type could not read the input ({type(exc).__name__}: {exc})."
        raise InferenceInputError({"__all__": [message]}, 422) from None


def _encoded(model, user, ingestion, entry) -> Result:
    if isinstance(entry, EntryError):
        raise entry
    if isinstance(entry, DatasetRecord):
        return _record(model, user, entry)
    from apps.datasets.shards import image_to_array

    features, label = ingestion.encode_entry(entry)
    if isinstance(features, Image.Image):  # an 8-bit image returned as it is
        features = image_to_array(features)
    return Result(str(entry), np.asarray(features), label)


def _record(model, user, record: DatasetRecord) -> Result:
    """An entry of the built dataset: only from a dataset ``user`` may see."""
    from apps.datasets import shards

    if not permissions.can(user, permissions.VIEW, model.dataset):
        raise EntryError("The model's dataset is not shared with you; upload a file.")
    try:
        features, label = shards.read_entry(model.dataset, record.stage, record.index)
    except IndexError as exc:
        raise EntryError(str(exc)) from None
    return Result(f"{record.stage} entry {record.index}", features, label)


def predict(model, results: list[Result], epoch: int | None = None) -> int:
    """Run the network on the inputs and fill each result's ``output_data``: the raw output
    under ``"output"`` and the task's answer. Returns the epoch used.

    ``InferenceInputError`` for inputs the network cannot take or a failed inference.
    """
    from apps.inference import service

    shape = tuple(model.dataset.manifest["feature"]["shape"])
    for result in results:
        if result.features.shape != shape:
            raise InferenceInputError(
                {"__all__": [f"{result.input_id} is {_size(result.features.shape)}; "
                             f"the model takes {_size(shape)}."]}
            )  # fmt: skip
    try:
        answer = service.infer(model, np.stack([r.features for r in results]), epoch=epoch)
    except service.InferenceError as exc:
        raise InferenceInputError({exc.field or "__all__": [str(exc)]}, exc.status) from None
    task = tasks.task_of(model.dataset.manifest)
    names = model.dataset.manifest.get("label_names")
    for result, output in zip(results, answer.outputs, strict=True):
        result.output_data = {"output": output, **task.postprocess(output, label_names=names)}
    return answer.epoch


def _size(shape) -> str:
    return "×".join(str(n) for n in shape[:2]) + f" with {shape[2]} channel(s)"


# --- the page: results through a view plugin ---------------------------------------------
def rendered_views(model, results, view_class, config: dict, request) -> dict[str, Any]:
    """The view's header and one rendered block per result (HTML, autoescaped templates)."""
    from django.template.loader import render_to_string
    from django.utils.safestring import mark_safe

    view = view_class(dataset=model.dataset, **config)
    try:
        name, context = view.get_header_template()
        header = render_to_string(name, context, request) if name else ""
        items = []
        for result in results:
            data = view.process_data(
                result.input_id, result.features, result.output_data, result.ground_truth
            )
            name, context = view.get_view_template(data)
            items.append(mark_safe(render_to_string(name, context, request)))
    except Exception as exc:  # a broken view plugin costs its output, not the page
        raise InferenceInputError(
            {"view": [f"The view “{view_class.get_title()}” failed: {type(exc).__name__}: {exc}"]},
            500,
        ) from None
    return {"header": mark_safe(header), "items": items}


# --- the API: JSON answers ----------------------------------------------------------------
def api_answer(model, results: list[Result], epoch: int) -> dict[str, Any]:
    """``{"epoch", "task", "results": [...]}``: per input its id, the task's answer (a mask
    as a PNG data URL of class indices) and, with a mask as ground truth, Dice and IoU."""
    task = tasks.task_of(model.dataset.manifest)
    names = model.dataset.manifest.get("label_names") or []
    return {
        "epoch": epoch,
        "task": task.name,
        "results": [_answer(result, names) for result in results],
    }


def _answer(result: Result, names: list[str]) -> dict[str, Any]:
    from PIL import Image

    from apps.core.plugins import mean_score, png_data_url, segmentation_scores

    answer: dict[str, Any] = {"input": result.input_id}
    for key, value in result.output_data.items():
        if key == "output":
            continue
        if isinstance(value, np.ndarray):
            if value.ndim == 2 and value.dtype == np.uint8:
                answer[key] = png_data_url(Image.fromarray(value, "L"))
                answer[f"{key}_shape"] = list(value.shape)
        else:
            answer[key] = value
    mask, truth = result.output_data.get("mask"), result.ground_truth
    if isinstance(mask, np.ndarray) and isinstance(truth, np.ndarray) and truth.ndim == 2:
        scores = segmentation_scores(mask, truth, max(len(names), int(truth.max()) + 1, 2))
        answer["scores"] = [
            {"class": names[s["index"]] if s["index"] < len(names) else str(s["index"]), **s}
            for s in scores
        ]
        answer["mean_dice"], answer["mean_iou"] = (mean_score(scores, k) for k in ("dice", "iou"))
    return answer
