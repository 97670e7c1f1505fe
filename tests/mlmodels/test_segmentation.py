"""Segmentation end to end on the real job path: a Sunnybrook-layout set of DICOM files
(``digits_sunnybrook.testing.make_ellipse_tree``: 12-bit images, a varying ellipse
"ventricle") is built by the Sunnybrook plugin, a U-Net learns it on the CPU, the
platform's Dice and IoU are those NumPy computes from the snapshot's predictions, and
the downloaded bundle's ``predict.py`` gives the platform's mask with plain Keras.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from digits_sunnybrook.testing import make_ellipse_tree
from PIL import Image

from apps.datasets import shards
from apps.datasets.models import Dataset
from apps.mlmodels import snapshots
from tests.conftest import wait_until
from tests.mlmodels.helpers import (
    BUILD_TIMEOUT,
    DATASETS_URL,
    create_model,
    epoch_lines,
    finished,
    log_lines,
    series,
)

pytestmark = [pytest.mark.tensorflow, pytest.mark.timeout(900)]

UNET = {"source": "standard", "name": "unet"}
#: Seeded, 8 epochs of 7 steps: the U-Net's validation Dice is 0.82, 0.96, 0.98 after epochs
#: 6, 7 and 8 (10 epochs added 0.007).
OPTIONS = {"epochs": 8, "batch_size": 8, "base_lr": 0.003, "optimizer": "adam",
           "policy": "fixed", "seed": 1, "metrics_every": 2}  # fmt: skip


def build_sunnybrook(api, root: Path, name="ventricles", cases=6, slices=10, size=64) -> Dataset:
    tree = make_ellipse_tree(root / name, cases=cases, slices=slices, size=size)
    options = {"image_folder": str(tree.images), "contour_folder": str(tree.contours),
               "val_percent": 20, "seed": 1}  # fmt: skip
    body = {"type": "image-sunnybrook", "name": name, "options": options}
    reply = api.post(DATASETS_URL, body, format="json")
    assert reply.status_code == 201, reply.content
    pk = reply.json()["id"]
    dataset = wait_until(
        lambda: Dataset.objects.exclude(status="building").filter(pk=pk).first(),
        timeout=BUILD_TIMEOUT, interval=0.5,
    )  # fmt: skip
    assert dataset.status == "ready", dataset.job.error
    return dataset


def numpy_figures(truth: np.ndarray, predicted: np.ndarray, classes: int) -> dict[str, float]:
    """Dice and IoU per class and their means, straight from the definitions."""
    out = {}
    for c in range(classes):
        t, p = truth == c, predicted == c
        overlap, union = np.logical_and(t, p).sum(), np.logical_or(t, p).sum()
        out[f"iou_{c}"] = overlap / union
        out[f"dice_{c}"] = 2 * overlap / (t.sum() + p.sum())
    out["mean_iou"] = np.mean([out[f"iou_{c}"] for c in range(classes)])
    out["dice"] = np.mean([out[f"dice_{c}"] for c in range(1, classes)])
    out["pixel_accuracy"] = (truth == predicted).mean()
    return out


def stage_arrays(dataset, stage: str) -> tuple[np.ndarray, np.ndarray]:
    count = dataset.manifest["stages"][stage]["count"]
    pairs = [shards.read_entry(dataset, stage, i) for i in range(count)]
    return np.stack([f for f, _ in pairs]), np.stack([m for _, m in pairs])


def snapshot_predictions(model, features: np.ndarray, workdir: Path) -> np.ndarray:
    """The argmax mask of the model's best-epoch snapshot (``model.keras``, safe mode)."""
    import keras

    import apps.mlmodels.segmentation  # noqa: F401  the metric's class, registered

    snapshots.extract(model.pk, model.best_epoch, workdir)
    network = keras.models.load_model(workdir / "model.keras", compile=False, safe_mode=True)
    scores = network.predict(features.astype(np.float32), batch_size=8, verbose=0)
    return np.argmax(scores, axis=-1)


def test_a_unet_learns_the_ventricle_and_its_bundle_predicts_the_same_mask(
    api, data_root, worker, tmp_path
):
    dataset = build_sunnybrook(api, data_root)
    manifest = dataset.manifest
    assert manifest["task"] == "segmentation" and manifest["label"]["kind"] == "mask"
    assert manifest["feature"]["shape"] == [64, 64, 1]
    # Split by case: 20 % of 6 cases is one whole case of 10 slices in validation.
    assert manifest["stages"]["val"]["count"] == 10
    assert manifest["stages"]["train"]["count"] == 50

    created = create_model(api, dataset, "unet", network=UNET, **OPTIONS)
    model = finished(created["id"])
    assert model.status == "ready", model.job.error
    epochs = model.result["epochs"]
    print("val Dice per epoch:", [round(e["val_dice"], 4) for e in epochs])
    assert [e["epoch"] for e in epochs] == list(range(1, OPTIONS["epochs"] + 1))
    assert model.result["task"] == "segmentation"
    best = next(e for e in epochs if e["epoch"] == model.best_epoch)
    assert best["val_dice"] == max(e["val_dice"] for e in epochs)  # chosen by validation Dice
    assert best["val_dice"] >= 0.85, epochs
    assert epoch_lines(log_lines(model.job)) == list(range(1, OPTIONS["epochs"] + 1))
    names = set(model.job.events.filter(type="metric").values_list("data__series", flat=True))
    assert {"train/loss", "train/pixel_accuracy", "train/dice", "train/mean_iou", "val/loss",
            "val/pixel_accuracy", "val/mean_iou", "val/dice", "val/dice_0", "val/dice_1",
            "val/iou_1", "lr", "epoch"} <= names  # fmt: skip
    assert [v for _, v in series(model.job, "val/dice")] == [e["val_dice"] for e in epochs]

    # --- the platform's figures are NumPy's on the same predictions ----------------------
    features, truth = stage_arrays(dataset, "val")
    predicted = snapshot_predictions(model, features, tmp_path / "snapshot")
    expected = numpy_figures(truth, predicted, 2)
    for key, value in expected.items():
        assert best[f"val_{key}"] == pytest.approx(value, abs=2e-3), key

    # --- the download bundle: predict.py with plain Keras gives the same mask ------------
    reply = api.get(f"/api/v1/models/{model.pk}/download/")
    assert reply.status_code == 200, reply.content
    bundle = tmp_path / "bundle"
    with tarfile.open(fileobj=io.BytesIO(b"".join(reply.streaming_content)
                                         if reply.streaming else reply.content)) as tar:  # fmt: skip
        tar.extractall(bundle, filter="data")
    [folder] = list(bundle.iterdir())
    assert {"model.keras", "preprocessing.json", "labels.txt", "predict.py"} <= {
        p.name for p in folder.iterdir()
    }
    image = tmp_path / "slice.png"
    Image.fromarray(features[3][:, :, 0]).save(image)
    out = tmp_path / "mask.png"
    run = subprocess.run(
        [sys.executable, str(folder / "predict.py"), str(image), "--mask", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "left ventricle" in run.stdout
    assert (np.asarray(Image.open(out)) == predicted[3]).all()


def test_a_killed_segmentation_job_resumes_from_its_last_snapshot(api, data_root, worker):
    from tests.mlmodels.test_resume import around, logged_epochs, saved_at_least

    # 32×32 slices: a quarter of the 64×64 ones' work per step.
    dataset = build_sunnybrook(api, data_root, name="small", cases=4, slices=8, size=32)
    epochs = 6
    # The options of segmentation training that change the graph: weighted + Dice loss,
    # augmentation of image and mask in the input pipeline.
    options = {**OPTIONS, "epochs": epochs, "batch_size": 4, "class_weights": [1, 5],
               "dice_loss": 0.5, "augmentation": {"flip_horizontal": True,
               "rotation_degrees": 10, "crop_percent": 10, "contrast": 0.1}}  # fmt: skip
    created = create_model(api, dataset, "killed unet", network=UNET, **options)
    model_id = created["id"]
    wait_until(
        lambda: saved_at_least(model_id, 2) if logged_epochs(model_id) >= 2 else [],
        timeout=400, interval=0.2,
    )  # fmt: skip
    from tests.mlmodels.helpers import gone, job_process

    child = job_process(worker)
    child.kill()
    wait_until(lambda: gone(child), timeout=30)

    model = finished(model_id)
    job = model.job
    assert model.status == "ready", job.error
    assert job.attempts == 2
    first, second = around(job, "The job process was killed by SIGKILL. Retrying (attempt 2")
    resumed = model.result["resumed_from"]
    assert resumed >= 2 and any(
        f"Resumed from the snapshot of epoch {resumed}" in line for line in log_lines(job)
    )
    assert second["lines"] == list(range(resumed + 1, epochs + 1))
    result = model.result
    assert [e["epoch"] for e in result["epochs"]] == list(range(1, epochs + 1))
    assert all("val_dice" in e and "dice_1" in e for e in result["epochs"])
    steps = result["steps_per_epoch"]
    assert second["ends"] == [steps * n for n in range(resumed + 1, epochs + 1)]
    assert model.best_epoch == max(result["epochs"], key=lambda e: e["val_dice"])["epoch"]
