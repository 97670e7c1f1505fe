"""Models with real snapshots for the warm-inference tests, without training.

A LeNet with seeded random weights is saved exactly as a training job saves a snapshot
(``model.keras`` and ``state.json`` in the epoch's tar object), on a
dataset whose ``val`` stage is a real NumPy shard in the store. What the platform answers
is compared with what Keras computes here on the same file.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from apps.core.storage import get_store
from apps.datasets.models import Dataset
from apps.datasets.shards import NPY_FORMAT
from apps.jobs.models import Job
from apps.mlmodels import snapshots
from apps.mlmodels.models import TrainedModel

SHAPE = (28, 28, 1)
NAMES = [str(d) for d in range(10)]
LENET = {"source": "standard", "name": "lenet"}
SOLVER = {"mean_subtraction": "none", "epochs": 1, "batch_size": 8}


def val_entries(count: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (count, *SHAPE), dtype=np.uint8), np.arange(count) % 10


def make_dataset(owner, visibility: str = "private", team=None) -> Dataset:
    """A ready dataset whose ``val`` stage holds ``val_entries()`` in one NumPy shard."""
    build = Job.objects.create(owner=owner, kind="dataset.build", name="build", status="done")
    features, labels = val_entries()
    manifest = {
        "format": NPY_FORMAT, "shard_size": 100, "task": "classification",
        "label": {"kind": "class"}, "label_names": NAMES,
        "feature": {"shape": list(SHAPE), "dtype": "uint8"},
        "stages": {"val": {"count": len(labels), "shards": [
            {"features": "val/features-0.npy", "labels": "val/labels-0.npy"}]}},
    }  # fmt: skip
    for key, array in (("val/features-0.npy", features), ("val/labels-0.npy", labels)):
        out = io.BytesIO()
        np.save(out, array)
        get_store().put(f"jobs/{build.pk}/{key}", out.getvalue())
    return Dataset.objects.create(
        owner=owner, team=team, visibility=visibility, status="ready", name="digits",
        type="image-classification", manifest=manifest, job=build,
    )  # fmt: skip


def keras_model(seed: int = 1, network_code: str | None = None):
    import keras

    from apps.mlmodels import networks
    from apps.mlmodels.trainer import preprocessing_layer

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(SHAPE, name="image")
    core = networks.standard("lenet", SHAPE, len(NAMES))
    return keras.Model(inputs, core(preprocessing_layer("none", None)(inputs)), name=core.name)


def save_snapshot(model_id: int, epoch: int, keras_model) -> None:
    """Write the snapshot object a training job would publish for ``epoch``."""
    out = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="snapshot-") as name:  # left behind before
        folder = Path(name)
        keras_model.save(folder / "model.keras")
        (folder / "state.json").write_text(json.dumps({"epoch": epoch}))
        with tarfile.open(fileobj=out, mode="w") as tar:
            for path in sorted(folder.iterdir()):
                tar.add(path, arcname=path.name)
    get_store().put(snapshots.key(model_id, epoch), out.getvalue())


def make_model(owner, *, visibility="private", dataset=None, network=None, seed=1, team=None):
    """A ready model with a snapshot of epoch 1 (best), and the Keras model it holds."""
    dataset = dataset or make_dataset(owner, visibility, team)
    train = Job.objects.create(owner=owner, kind="model.train", name="train", status="done")
    model = TrainedModel.objects.create(
        owner=owner, team=team, visibility=visibility, name=f"lenet {seed}", dataset=dataset,
        status="ready", job=train, network=network or LENET, solver=SOLVER, best_epoch=1,
    )  # fmt: skip
    network_model = keras_model(seed)
    save_snapshot(model.pk, 1, network_model)
    return model, network_model


def png(array: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(array.squeeze()).save(out, format="PNG")
    return out.getvalue()
