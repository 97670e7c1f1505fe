"""A run that stops early (aborted, failed) keeps what it finished, and its pages say so:
epochs, downloads and curves on the model page, the models list and the compare page;
only the actions that make sense; the job page in words, linked to its model."""

from __future__ import annotations

import html
import re

import pytest

from apps.core.storage import get_store
from apps.jobs import events
from apps.jobs.kinds import get_kind
from apps.jobs.models import Job
from apps.mlmodels import snapshots
from apps.mlmodels.models import TrainedModel
from tests.mlmodels.test_errors import ready_dataset

ROWS = [
    {"epoch": 1, "loss": 0.9, "accuracy": 0.6, "val_loss": 0.8, "val_accuracy": 0.7},
    {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.45, "val_accuracy": 0.875,
     "snapshot": True},
    {"epoch": 3, "loss": 0.4, "accuracy": 0.85, "val_loss": 0.5, "val_accuracy": 0.8},
]  # fmt: skip


def stopped_model(owner, status="aborted", name="stopped lenet") -> TrainedModel:
    """A model whose training job reported 3 epochs (a snapshot at epoch 2), then stopped."""
    dataset = ready_dataset(owner, "digits for " + name)
    job = Job.objects.create(
        owner=owner, name=f"Train {name}", kind="model.train", queue="gpu", status="running",
        params={"model_id": None, "dataset": {"id": dataset.pk, "prefix": "datasets/x/",
                "manifest": {"sha256": "f00d" * 16}}, "solver": {"epochs": 10,
                "base_lr": 0.01, "batch_size": 8, "shuffle": True, "seed": None}},
    )  # fmt: skip
    model = TrainedModel.objects.create(
        owner=owner, name=name, dataset=dataset, status="training", job=job,
        network={"source": "standard", "name": "lenet"},
        solver={"epochs": 10, "batch_size": 8, "base_lr": 0.01},
    )  # fmt: skip
    job.params = {**job.params, "model_id": model.pk}
    job.save(update_fields=["params"])
    events.append(
        job.pk,
        [events.event("metric", series="steps_per_epoch", step=0, value=5)]
        + [events.event("epoch", epoch=r["epoch"], step=5 * r["epoch"], row=r) for r in ROWS],
    )
    get_store().put(snapshots.key(model.pk, 2), b"not a real tar")
    Job.objects.filter(pk=job.pk).update(status=status, eta_seconds=61)
    job.refresh_from_db()
    get_kind("model.train").on_failed(job)
    model.refresh_from_db()
    return model


def epoch_rows(page: str) -> list[str]:
    return re.findall(r'<tr data-epoch="(\d+)"', page)


@pytest.mark.parametrize("status", ["aborted", "error"])
def test_a_stopped_run_keeps_its_epochs_best_epoch_and_downloads(client, people, status):
    model = stopped_model(people.owner, status=status)
    assert model.status == status
    assert [e["epoch"] for e in model.result["epochs"]] == [1, 2, 3]
    assert model.best_epoch == 2 and model.result["snapshots"] == [2]
    client.force_login(people.owner)

    page = client.get(f"/models/{model.pk}/").content.decode()
    assert epoch_rows(page) == ["1", "2", "3"]
    assert f"/models/{model.pk}/download/?epoch=2" in html.unescape(page)
    assert "No finished epoch yet" not in page
    # Resume continues from the snapshot; classifying uses it; nothing to abort.
    assert 'data-role="resume-form"' in page and "Classify an image" in page
    assert 'data-role="abort-form"' not in page
    assert 'data-confirm="Delete this model' in page

    listing = client.get("/models/").content.decode()
    row = re.search(rf'<tr[^>]*data-model="{model.pk}".*?</tr>', listing, re.S).group(0)
    assert "0.8750" in row, row  # its best epoch's validation accuracy

    other = stopped_model(people.owner, status=status, name="other lenet")
    compare = client.get("/models/compare/", {"id": [model.pk, other.pk]}).content.decode()
    assert "0.8750" in compare
    assert '"val_accuracy": [[1, 0.7], [2, 0.875], [3, 0.8]]' in compare


def test_actions_follow_the_models_state(client, people):
    model = stopped_model(people.owner)
    client.force_login(people.owner)
    TrainedModel.objects.filter(pk=model.pk).update(status="ready")
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert 'data-role="resume-form"' not in page, "a finished model has nothing to resume"
    get_store().delete(snapshots.key(model.pk, 2))
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert "Classify an image" not in page, "no snapshot: nothing to classify with"


def test_the_job_page_speaks_in_words_and_links_to_its_model(client, people):
    model = stopped_model(people.owner)
    client.force_login(people.owner)
    page = client.get(f"/jobs/{model.job_id}/").content.decode()
    text = html.unescape(page)
    assert f'href="/models/{model.pk}/" data-role="belongs-to"' in page
    assert "Snapshot, epoch 2" in text and f"/models/{model.pk}/download/?epoch=2" in text
    assert "None yet." not in page
    params = re.search(r'<table class="table table-sm small" id="job-params">(.*?)</table>', page,
                       re.S).group(1)  # fmt: skip
    assert "Solver · Base learning rate</th><td>0.01" in params
    assert "Solver · Shuffle</th><td>Yes" in params and "Solver · Seed</th><td>—" in params
    assert "f00d" not in params and "prefix" not in params.lower()
    technical = re.search(r'data-role="technical">(.*?)</details>', page, re.S).group(1)
    assert "f00d" in technical  # the detail is folded away, not lost
    assert "ETA 61" not in page, "a stopped job has no ETA"


def test_the_job_page_and_api_show_the_queue_position(client, people, api_client):
    from tests.jobs.helpers import submit_check

    first = submit_check(people.owner, send=False)
    second = submit_check(people.owner, send=False)
    client.force_login(people.owner)
    page = client.get(f"/jobs/{second.pk}/").content.decode()
    assert "position 2 in the queue" in page
    assert re.search(r'data-role="abort-form" data-confirm="Abort this job\?', page)
    api = api_client.as_user(people.owner)
    assert api.get(f"/api/v1/jobs/{first.pk}/").json()["queue_position"] == 1
    Job.objects.filter(pk=first.pk).update(status="running")
    assert api.get(f"/api/v1/jobs/{second.pk}/").json()["queue_position"] == 1
    Job.objects.filter(pk=second.pk).update(status="done")
    assert api.get(f"/api/v1/jobs/{second.pk}/").json()["queue_position"] is None
    assert "in the queue" not in client.get(f"/jobs/{second.pk}/").content.decode()


def test_a_build_jobs_page_links_to_its_dataset(client, people):
    dataset = ready_dataset(people.owner, "built digits")
    job = Job.objects.create(owner=people.owner, name="Build", kind="dataset.build",
                             status="done", params={"type_id": "image-classification"})  # fmt: skip
    dataset.job = job
    dataset.save(update_fields=["job"])
    client.force_login(people.owner)
    page = html.unescape(client.get(f"/jobs/{job.pk}/").content.decode())
    assert f'href="/datasets/{dataset.pk}/" data-role="belongs-to">Dataset “built digits”' in page
    assert "Dataset type</th><td>image-classification" in page
