"""Training through the real job path: REST API → gpu-queue worker → job process → Keras.

LeNet learns scikit-learn's handwritten digits (scaled up to 28×28 by the image
classification plugin), classifies an uploaded digit through the warm inference server,
and the downloaded archive's ``model.keras`` (loaded in safe mode) agrees with it.
A seeded run is reproducible on the CPU.
"""

import io
import json
import tarfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.mlmodels.lr_policies import learning_rate
from tests.mlmodels.helpers import (
    build_dataset,
    create_model,
    create_models,
    digits,
    epoch_lines,
    finished,
    log_lines,
    png,
    series,
)

pytestmark = [pytest.mark.tensorflow, pytest.mark.timeout(900)]


def test_lenet_learns_the_digits_classifies_an_upload_and_downloads(
    api, data_root, worker, inference_server
):
    dataset = build_dataset(api, data_root, size=28)
    manifest = dataset.manifest
    assert manifest["feature"]["shape"] == [28, 28, 1]
    assert manifest["label_names"] == [str(d) for d in range(10)]
    assert manifest["stages"]["val"]["count"] >= 400  # 25 % of 1797, per class

    # Seeded: the validation accuracy is 0.9053, 0.9515, 0.9581, 0.9670 after epochs 1..4 —
    # three epochs above the bar, the best one by 0.017 (8 epochs added 0.013 more).
    created = create_model(api, dataset, "lenet digits", epochs=4, batch_size=32, base_lr=0.001)
    assert created["status"] == "training" and created["solver"]["seed"] == 1
    model = finished(created["id"])
    assert model.status == "ready", model.job.error
    result = model.result
    epochs = result["epochs"]
    assert [e["epoch"] for e in epochs] == list(range(1, 5))
    assert result["snapshots"] == list(range(1, 5)) and result["resumed_from"] == 0
    best = next(e for e in epochs if e["epoch"] == model.best_epoch)
    print("val accuracy per epoch:", [round(e["val_accuracy"], 4) for e in epochs])
    assert best["val_accuracy"] >= 0.95, epochs
    assert best["val_accuracy"] == max(e["val_accuracy"] for e in epochs)
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert epoch_lines(log_lines(model.job)) == list(range(1, 5))
    job = model.job
    names = set(job.events.filter(type="metric").values_list("data__series", flat=True))
    assert {"train/loss", "train/accuracy", "val/loss", "val/accuracy", "val/top5", "lr",
            "images_per_sec", "epoch", "cpu_percent", "memory_mb"} <= names  # fmt: skip
    # The schedule's steps line up with epochs: 4 epochs of ceil(train / 32) steps each.
    steps = -(-manifest["stages"]["train"]["count"] // 32)
    assert result["steps_per_epoch"] == steps
    assert [step for step, _ in series(job, "epoch")] == [steps * n for n in range(1, 5)]
    assert job.progress == 1.0 and job.attempts == 1

    # --- classify an uploaded digit (the original 8×8 PNG; the server resizes it) --------
    images, labels = digits()
    index = 0  # a clear "0"
    reply = api.post(
        f"/api/v1/models/{model.pk}/classify/",
        {"image": SimpleUploadedFile("zero.png", png(images[index]), content_type="image/png")},
        format="multipart",
    )
    assert reply.status_code == 200, reply.content
    answer = reply.json()
    predictions = answer["predictions"]
    assert answer["epoch"] == model.best_epoch
    assert len(predictions) == 5
    assert predictions[0]["label"] == str(labels[index]) == "0"
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 + 1e-6 and probabilities[0] > 0.5

    # --- download the best epoch and run the archive's model.keras here ---------------
    reply = api.get(f"/api/v1/models/{model.pk}/download/", {"epoch": model.best_epoch})
    assert reply.status_code == 200, reply.content
    assert reply["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(reply.content), mode="r:gz") as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar if m.isfile()}
    assert {"model.keras", "labels.txt", "preprocessing.json"} <= set(files)
    assert files["labels.txt"].decode().split() == [str(d) for d in range(10)]
    preprocessing = json.loads(files["preprocessing.json"])
    assert (
        preprocessing["input_shape"] == [28, 28, 1] and preprocessing["epoch"] == model.best_epoch
    )

    import keras
    from PIL import Image

    keras_file = data_root.parent / "model.keras"
    keras_file.write_bytes(files["model.keras"])
    loaded = keras.models.load_model(keras_file, compile=False, safe_mode=True)
    # The same squash resize the plugin and the server apply: bilinear, to 28×28.
    pixels = np.asarray(
        Image.fromarray(images[index]).resize((28, 28), Image.Resampling.BILINEAR), np.float32
    )
    local = loaded.predict(pixels[None, :, :, None], verbose=0)[0]
    assert int(np.argmax(local)) == labels[index]
    assert local[predictions[0]["index"]] == pytest.approx(probabilities[0], abs=1e-4)


def test_a_seeded_run_is_reproducible_on_the_cpu(api, digits_dataset):
    dataset = digits_dataset(size=16, per_class=40, name="small")
    first, second = (
        create_model(api, dataset, f"seeded {n}", epochs=3, batch_size=16, base_lr=0.01,
                     optimizer="momentum", policy="step", step_size=50, seed=1234)
        for n in (1, 2)
    )  # fmt: skip
    first, second = finished(first["id"]), finished(second["id"])
    assert first.status == second.status == "ready", (first.job.error, second.job.error)
    a, b = first.result["epochs"], second.result["epochs"]
    assert len(a) == len(b) == 3
    for x, y in zip(a, b, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert x[key] == pytest.approx(y[key], abs=1e-6), (key, a, b)
    # Every streamed training-loss point agrees too, not only the epoch summaries.
    loss_a, loss_b = series(first.job, "train/loss"), series(second.job, "train/loss")
    assert len(loss_a) >= 3 and [s for s, _ in loss_a] == [s for s, _ in loss_b]
    np.testing.assert_allclose([v for _, v in loss_a], [v for _, v in loss_b], atol=1e-6)
    # The reported learning rate follows the step policy over the run's iterations.
    max_iter = first.result["steps_per_epoch"] * 3
    for step, lr in series(first.job, "lr"):
        expected = learning_rate("step", step, base_lr=0.01, max_iter=max_iter, step_size=50)
        assert lr == pytest.approx(expected, rel=1e-6), (step, lr)
    assert len({lr for _, lr in series(first.job, "lr")}) == 2  # 0.01, then 0.001
    # A different seed is a different run.
    [other] = create_models(api, dataset, "other seed", epochs=1, batch_size=16, base_lr=0.01,
                            optimizer="momentum", seed=99)  # fmt: skip
    other = finished(other["id"])
    assert other.status == "ready", other.job.error
    assert other.result["epochs"][0]["loss"] != pytest.approx(a[0]["loss"], abs=1e-6)
