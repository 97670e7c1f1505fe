"""The downloadable archive of a model at one epoch, assembled from its snapshot.

Only bytes are moved here (no model is loaded), so it is safe in the web process.
"""

from __future__ import annotations

import io
import json
import tarfile

from django.http import Http404, HttpResponse

from apps.core.storage import get_store
from apps.mlmodels import snapshots


def archive(model, epoch: int) -> bytes:
    """``.tar.gz`` with model.keras, labels.txt, preprocessing.json, network.py, mean.npy."""
    dataset, result = model.dataset, model.result
    manifest = dataset.manifest
    preprocessing = {
        "input_shape": manifest.get("feature", {}).get("shape"),
        "input_dtype": manifest.get("feature", {}).get("dtype"),
        "layout": "HWC",
        "resize_mode": dataset.options.get("resize_mode", "squash"),
        "mean_subtraction": model.solver.get("mean_subtraction"),
        "notes": "model.keras takes raw pixel values (0..255); scaling and mean "
        "subtraction are layers of the model.",
        "label_names": manifest.get("label_names"),
        "epoch": epoch,
        "metrics": next((e for e in result.get("epochs", []) if e["epoch"] == epoch), None),
    }
    out = io.BytesIO()
    with get_store().open(snapshots.key(model.pk, epoch)) as fh:
        snapshot_bytes = fh.read()
    with tarfile.open(fileobj=io.BytesIO(snapshot_bytes)) as snapshot:
        model_file = snapshot.extractfile("model.keras").read()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{_slug(model.name)}-epoch{epoch}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("model.keras", model_file)
        add("preprocessing.json", json.dumps(preprocessing, indent=2).encode())
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
