"""The downloadable archive of a model at one epoch, assembled from its snapshot.

Only bytes are moved here (no model is loaded), so it is safe in the web process.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

from django.http import Http404, HttpResponse

from apps.core.storage import get_store
from apps.mlmodels import snapshots, tasks
from apps.mlmodels.tasks import input_peak

#: The example script of every bundle (plain Keras, reads preprocessing.json).
PREDICT_SCRIPT = Path(__file__).with_name("bundle") / "predict.py"
#: Dataset options that are where the data came from, not how it was encoded: left out.
_SOURCE_OPTION = re.compile(r"(folder|path|file|key|archive|url|source|upload)s?$")


def preprocessing(model, epoch: int) -> dict:
    """What running the model elsewhere needs to know (``preprocessing.json``)."""
    dataset, result = model.dataset, model.result
    manifest = dataset.manifest
    options = dataset.options or {}
    return {
        "task": tasks.task_of(manifest).name,
        "input_shape": manifest.get("feature", {}).get("shape"),
        "input_dtype": manifest.get("feature", {}).get("dtype"),
        "layout": "HWC",
        "input_scale": input_peak(manifest),
        "resize_mode": options.get("resize_mode", "squash"),
        "mean_subtraction": model.solver.get("mean_subtraction"),
        "notes": "model.keras takes raw pixel values (0..input_scale); scaling and mean "
        "subtraction are layers of the model. Segmentation outputs are (H, W, classes) "
        "per-pixel probabilities: the mask is their argmax.",
        "label_names": manifest.get("label_names"),
        # How the dataset type turned its files into pixels (e.g. DICOM windowing).
        "dataset_type": dataset.type,
        "dataset_options": {k: v for k, v in options.items() if not _SOURCE_OPTION.search(k)},
        "window": manifest.get("window") or options.get("window") or None,
        "epoch": epoch,
        "metrics": next((e for e in result.get("epochs", []) if e["epoch"] == epoch), None),
    }


def archive(model, epoch: int) -> bytes:
    """``.tar.gz`` with model.keras, preprocessing.json, labels.txt, predict.py and, where
    they exist, network.py (custom code) and mean.npy."""
    dataset, manifest = model.dataset, model.dataset.manifest
    out = io.BytesIO()
    with get_store().open(snapshots.key(model.pk, epoch)) as fh:
        snapshot_bytes = fh.read()
    with tarfile.open(fileobj=io.BytesIO(snapshot_bytes)) as snapshot:
        model_file = snapshot.extractfile("model.keras").read()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:

        def add(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(f"{_slug(model.name)}-epoch{epoch}/{name}")
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        add("model.keras", model_file)
        add("preprocessing.json", json.dumps(preprocessing(model, epoch), indent=2).encode())
        add("predict.py", PREDICT_SCRIPT.read_bytes(), 0o755)
        if manifest.get("label_names"):
            add("labels.txt", ("\n".join(manifest["label_names"]) + "\n").encode())
        if model.network.get("source") == "custom":
            add("network.py", model.network["code"].encode())
        if manifest.get("mean"):
            add("mean.npy", get_store().get(dataset.data_prefix + manifest["mean"]["npy"]))
    return out.getvalue()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-")[:60] or "model"


def download_response(model, epoch_param) -> HttpResponse:
    """The model archive at ``epoch_param`` (default: the best epoch), shared with the API."""
    try:
        epoch = int(epoch_param or model.best_epoch or snapshots.epochs(model.pk)[-1])
    except (ValueError, IndexError):
        raise Http404("The model has no snapshot to download.") from None
    if epoch not in snapshots.epochs(model.pk):
        raise Http404(f"No snapshot of epoch {epoch}.")
    response = HttpResponse(archive(model, epoch), content_type="application/gzip")
    response["Content-Disposition"] = f'attachment; filename="model-{model.pk}-epoch{epoch}.tar.gz"'
    return response
