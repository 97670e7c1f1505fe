"""A real ``model.evaluate`` job: a LeNet trained by a worker classifies a dataset stage,
an archive and a list in batches; the figures equal scikit-learn's on the published
predictions, which equal Keras' own ``predict`` on the same images; a refused archive
fails the job and leaves no artifact."""

from __future__ import annotations

import io
import tarfile
import zipfile

import numpy as np
import pytest

from apps.core.storage import get_store
from apps.evaluations.models import Evaluation
from apps.jobs.models import JobArtifact
from apps.mlmodels import snapshots
from tests.conftest import grant_custom_code, wait_until
from tests.evaluations.helpers import NAMES, digits_dataset, stored_table
from tests.mlmodels.helpers import create_model, digits, finished, png

pytestmark = [pytest.mark.tensorflow, pytest.mark.timeout(900)]
URL = "/api/v1/evaluations/"
TRAIN, VAL = 300, 120


def ended(pk: int) -> Evaluation:
    return wait_until(
        lambda: Evaluation.objects.exclude(status="running").filter(pk=pk).first(),
        timeout=300, interval=0.5, message=f"evaluation {pk} still running",
    )  # fmt: skip


def keras_probs(model_id: int, epoch: int, images: np.ndarray, tmp_path) -> np.ndarray:
    """The snapshot's whole model (model.keras) run by Keras itself on ``images``."""
    import keras

    snapshots.extract(model_id, epoch, tmp_path / "snap")
    model = keras.models.load_model(tmp_path / "snap" / "model.keras", compile=False)
    return model.predict(images.astype(np.float32), verbose=0)


def archive_of(indices, labelled=True) -> io.BytesIO:
    images, labels = digits()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for i in indices:
            folder = NAMES[labels[i]] if labelled else "unsorted"
            zf.writestr(f"{folder}/img_{i:04d}.png", png(images[i]))
        zf.writestr("digit 1/broken.png", b"not an image")
        zf.writestr("readme.txt", b"skipped: not an image name")
    out.seek(0)
    out.name = "digits.zip"
    return out


def evil_archive() -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = png(digits()[0][0])
        info = tarfile.TarInfo("../escape.png")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    out.name = "evil.tar"
    return out


def test_a_trained_model_evaluates_a_stage_an_archive_and_a_list(
    api_client, people, worker, data_root, fresh_cache, tmp_path
):
    from sklearn.metrics import accuracy_score, confusion_matrix

    api = api_client.as_user(grant_custom_code(people.owner))
    dataset = digits_dataset(people.owner, TRAIN, VAL)
    model = finished(create_model(api, dataset, epochs=2, batch_size=32)["id"])
    assert model.status == "ready", model.job.error
    images, labels = digits()
    for i in range(TRAIN, TRAIN + 6):
        (data_root / f"img_{i}.png").write_bytes(png(images[i]))
    listing = "\n".join(
        [f"{data_root}/img_{i}.png {labels[i]}" for i in range(TRAIN, TRAIN + 4)]
        + [f"{data_root}/img_{TRAIN + 4}.png", "# a comment", f"{data_root}/img_{TRAIN + 5}.png 42",
           "/etc/passwd 1"]
    ).encode()  # fmt: skip
    list_file = io.BytesIO(listing)
    list_file.name = "list.txt"
    posts = {
        "stage": api.post(URL, {"model": model.pk, "source": "stage", "batch_size": 50}),
        "archive": api.post(URL, {"model": model.pk, "source": "archive", "top_n": 3,
                                  "archive": archive_of(range(TRAIN, TRAIN + 30))}),
        "list": api.post(URL, {"model": model.pk, "source": "list", "list": list_file}),
        "evil": api.post(URL, {"model": model.pk, "source": "archive", "archive": evil_archive()}),
    }  # fmt: skip
    assert {k: r.status_code for k, r in posts.items()} == dict.fromkeys(posts, 202)
    done = {k: ended(r.json()["id"]) for k, r in posts.items()}

    # The dataset stage: figures equal scikit-learn's on the published predictions, and the
    # predictions equal Keras' own on the same images.
    stage = done["stage"]
    assert stage.status == "done", stage.job.error
    table = stored_table(stage)
    truth, val_images = labels[TRAIN : TRAIN + VAL], images[TRAIN : TRAIN + VAL, :, :, None]
    assert np.array_equal(table["label"], truth) and np.array_equal(table["index"], range(VAL))
    reference = keras_probs(model.pk, stage.epoch, val_images, tmp_path)
    assert np.allclose(table["probs"], reference, atol=1e-5)
    guess = table["probs"].argmax(axis=1)
    assert stage.summary["accuracy"] == pytest.approx(accuracy_score(truth, guess))
    assert stage.summary["confusion"] == confusion_matrix(truth, guess, labels=range(10)).tolist()
    assert JobArtifact.objects.filter(job=stage.job, name="predictions.npy").exists()

    # The archive: labels from the folders, an unreadable image skipped and named.
    archive = done["archive"]
    assert archive.status == "done", archive.job.error
    table = stored_table(archive)
    assert len(table) == 30 and np.array_equal(
        np.sort(table["label"]), np.sort(labels[TRAIN : TRAIN + 30])
    )
    by_name = {name.decode(): row for name, row in zip(table["name"], table["probs"], strict=True)}
    for i in range(TRAIN, TRAIN + 30):
        assert np.allclose(
            by_name[f"{NAMES[labels[i]]}/img_{i:04d}.png"], reference[i - TRAIN], atol=1e-5
        )
    assert archive.job.result["skipped_count"] == 1
    assert "digit 1/broken.png" in archive.job.result["skipped"][0]
    assert archive.summary["top_n"] == 3

    # The list: optional labels; a label out of range and a path outside the roots skipped.
    listed = done["list"]
    assert listed.status == "done", listed.job.error
    table = stored_table(listed)
    assert table["label"].tolist() == [*labels[TRAIN : TRAIN + 4], -1]
    assert np.allclose(table["probs"], reference[:5], atol=1e-5)
    assert listed.job.result["skipped_count"] == 2 and listed.summary["labelled"] == 4

    # A refused archive: the job fails naming the member and publishes nothing.
    evil = done["evil"]
    assert evil.status == "error" and "'../escape.png'" in evil.job.error
    assert not JobArtifact.objects.filter(job=evil.job).exists() and not evil.predictions_key
    assert not list(get_store().list(evil.job.artifact_prefix))
    assert not list(get_store().list(f"_staging/jobs/{evil.job.pk}/"))
