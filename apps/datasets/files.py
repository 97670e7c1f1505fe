"""What a built dataset shows of itself, for its pages and the REST API alike: one entry as
a PNG, the mean image, and the dataset's own files as downloads."""

from __future__ import annotations

import io

import numpy as np
from django.http import Http404, HttpResponse, StreamingHttpResponse

from apps.core.downloads import artifact_response
from apps.core.plugins import DataIngestion
from apps.core.plugins.catalog import get_data_ingestion
from apps.core.plugins.interfaces import features_to_image, mask_to_image
from apps.datasets import shards

#: Files of a built dataset offered for download, with their content types.
DOWNLOADS = {
    "manifest.json": "application/json",
    "labels.txt": "text/plain; charset=utf-8",
    "errors.json": "application/json",
    "mean.png": "image/png",
    "mean.npy": "application/octet-stream",
}


def downloads(dataset) -> list[str]:
    """The names of ``DOWNLOADS`` this dataset has."""
    names = ["manifest.json", "errors.json"]
    if dataset.manifest.get("label_names"):
        names.insert(1, "labels.txt")
    mean = dataset.manifest.get("mean")
    if mean:
        names += [mean["png"], mean["npy"]]
    return [n for n in names if n in DOWNLOADS]


#: The pictures of an entry with a mask label: ``None`` is ``render_entry``'s (the overlay).
ENTRY_PARTS = (None, "image", "mask")


def entry_response(dataset, stage: str, index: int, part: str | None = None) -> HttpResponse:
    """Entry ``index`` of ``stage`` as its dataset type pictures it, a PNG (404 if none).

    ``part`` ``"image"`` or ``"mask"``: the features alone, or the mask alone in the
    palette's colours (entries with mask labels only).
    """
    if part not in ENTRY_PARTS:
        raise Http404(f"An entry has no picture {part!r}.")
    try:
        features, label = shards.read_entry(dataset, stage, index)
    except IndexError:
        raise Http404(f"{stage} has no entry {index}.") from None
    try:
        ingestion = get_data_ingestion(dataset.type)(**dataset.options)
    except LookupError:  # plugin uninstalled: the platform's own picture of the entry
        ingestion = DataIngestion(**dataset.options)
    if part == "image":
        picture = features_to_image(features)
    elif part == "mask":
        if not (isinstance(label, np.ndarray) and label.ndim == 2):
            raise Http404("This entry has no mask.")
        picture = mask_to_image(label, ingestion.get_palette())
    else:
        picture = ingestion.render_entry(features, label)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    response = HttpResponse(out.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


def mean_response(dataset) -> StreamingHttpResponse:
    """The mean image of the train stage, inline (404 if the dataset has none)."""
    mean = dataset.manifest.get("mean")
    if not mean:
        raise Http404("This dataset has no mean image.")
    response = artifact_response(dataset.data_prefix + mean["png"], "mean.png")
    response["Content-Type"] = "image/png"
    response["Content-Disposition"] = 'inline; filename="mean.png"'
    response["Cache-Control"] = "private, max-age=3600"
    return response


def file_response(dataset, name: str) -> StreamingHttpResponse:
    """One of the dataset's own files (``DOWNLOADS``), as a download (404 otherwise)."""
    if name not in downloads(dataset):
        raise Http404(f"This dataset has no file {name!r} to download.")
    response = artifact_response(dataset.data_prefix + name, name)
    response["Content-Type"] = DOWNLOADS[name]
    return response
