"""Objects outside jobs' artifacts take their owner's storage (ADR 0020). Model snapshots:
a training job's bytes written include the snapshots it published, the storage quota
counts them (whoever's job wrote them, for as long as their model keeps them), and deleting
the model frees them. Uploads: counted while stored.

Snapshots are written by the job process's ``snapshots.save`` and published through a real
artifact gate (the worker's side, ``apps.jobs.artifacts``) to the S3 server, as in a
training; only TensorFlow is left out.
"""

import io
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from apps.core import uploads
from apps.core.storage import get_store
from apps.core.storage.gate import GateStore
from apps.jobs import sweeper
from apps.jobs.artifacts import ArtifactGate
from apps.jobs.kinds import get_kind
from apps.jobs.models import Job
from apps.mlmodels import snapshots
from apps.usage.models import JobUsage, Quota, StoredObject
from tests.jobs.helpers import check_params
from tests.mlmodels.test_errors import ready_dataset
from tests.usage.test_quotas import post_check

MODELS = "/api/v1/models/"


@pytest.fixture
def publish(transactional_db, monkeypatch):
    """``publish(job, epoch, size)``: the running ``job`` saves the snapshot of ``epoch``
    (a weights file of ``size`` random bytes) and publishes it through its artifact gate;
    returns the snapshot's key."""
    gates, folders = {}, []

    def save(job: Job, epoch: int, size: int) -> str:
        if job.pk not in gates:
            folders.append(tempfile.mkdtemp(prefix="gate-"))  # short: a socket path
            gate = ArtifactGate(job, get_kind(job.kind), folders[-1], None)
            gate.start(process_group=os.getpgid(0))  # this test process plays the job
            gates[job.pk] = gate
        files = tempfile.mkdtemp(prefix="epoch-")
        folders.append(files)
        with open(os.path.join(files, "model.weights.h5"), "wb") as fh:
            fh.write(os.urandom(size))
        with open(os.path.join(files, "state.json"), "w") as fh:
            fh.write(f'{{"epoch": {epoch}}}')
        with monkeypatch.context() as patch:  # the job process's store is its gate
            patch.setattr(snapshots, "get_store", lambda: GateStore(gates[job.pk].path))
            return snapshots.save(job.params["model_id"], epoch, Path(files), job.staging_prefix)

    yield save
    for gate in gates.values():
        gate.close()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def train(client, dataset, **sharing) -> tuple[int, Job]:
    body = {
        "dataset": dataset.pk, "name": "lenet", **sharing,
        "network": {"source": "standard", "name": "lenet"},
        "solver": {"epochs": 3, "batch_size": 8, "base_lr": 0.01},
    }  # fmt: skip
    reply = client.post(MODELS, body, format="json")
    assert reply.status_code == 201, reply.content
    [model] = reply.json()["models"]
    return model["id"], Job.objects.get(pk=model["job"])


def abort(client, job: Job) -> None:
    reply = client.post(f"/api/v1/jobs/{job.pk}/abort/")
    assert reply.status_code == 200, reply.content
    job.refresh_from_db()
    assert job.status == "aborted"


def bytes_written(job: Job) -> int:
    return JobUsage.objects.get(job_number=job.pk).bytes_written


def test_snapshots_count_until_their_model_is_deleted(api_client, people, publish):
    store = get_store()
    client = api_client.as_user(people.owner)
    model_id, first = train(client, ready_dataset(people.owner))
    keys = [publish(first, 1, 3000), publish(first, 2, 5000)]
    abort(client, first)
    reply = client.post(f"{MODELS}{model_id}/resume/")  # reads the model's snapshots
    assert reply.status_code == 201, reply.content
    second = Job.objects.get(pk=reply.json()["id"])
    keys.append(publish(second, 3, 7000))
    abort(client, second)

    assert keys == [snapshots.key(model_id, epoch) for epoch in (1, 2, 3)]
    sizes = [store.size(key) for key in keys]  # the store's own figures
    assert sizes[0] > 3000 and sizes[2] > 7000
    # Each job wrote its own snapshots; the resumed run counts only the epochs it saved.
    assert bytes_written(first) == sizes[0] + sizes[1]
    assert bytes_written(second) == sizes[2]
    by_model = client.get("/api/v1/usage/", {"group": "model"})
    assert by_model.status_code == 200, by_model.content
    [row] = by_model.json()["rows"]
    assert (row["model_id"], row["jobs"], row["bytes_written"]) == (model_id, 2, sum(sizes))

    Quota.objects.create(user=people.owner, storage_bytes=sum(sizes))
    refused = post_check(client)
    assert refused.status_code == 429, refused.content
    body = refused.json()
    assert (body["quota"], body["scope"], body["used"]) == ("storage_bytes", "user", sum(sizes))
    assert "delete jobs, datasets or models" in body["detail"]

    # Deleting the first job keeps the model and its snapshots: they still count.
    assert client.delete(f"/api/v1/jobs/{first.pk}/").status_code == 204
    assert all(store.exists(key) for key in keys)
    assert post_check(client).json()["used"] == sum(sizes)
    assert bytes_written(first) == sizes[0] + sizes[1]  # usage outlives the job

    # Deleting the model deletes its snapshots and frees their bytes.
    assert client.delete(f"{MODELS}{model_id}/").status_code == 204
    assert not StoredObject.objects.exists()
    assert not any(store.exists(key) for key in keys)
    assert post_check(client).status_code == 201
    assert bytes_written(second) == sizes[2]


def test_a_teams_storage_counts_the_snapshots_of_the_models_shared_with_it(
    api_client, people, publish
):
    client = api_client.as_user(people.owner)
    model_id, job = train(client, ready_dataset(people.owner), team="vision", visibility="team")
    size = get_store().size(publish(job, 1, 4000))
    abort(client, job)
    Quota.objects.create(team=people.team, storage_bytes=size)
    body = {
        "kind": "worker.check",
        "team": "vision",
        "visibility": "team",
        "params": check_params(),
    }

    refused = client.post("/api/v1/jobs/", body, format="json")
    assert refused.status_code == 429, refused.content
    assert (refused.json()["scope"], refused.json()["used"]) == ("team vision", size)

    # Shared with no team any more: the snapshots are the owner's alone.
    reply = client.patch(
        f"{MODELS}{model_id}/", {"team": None, "visibility": "private"}, format="json"
    )
    assert reply.status_code == 200, reply.content
    accepted = client.post("/api/v1/jobs/", body, format="json")
    assert accepted.status_code == 201, accepted.content
    assert StoredObject.objects.get().owner == people.owner


def test_an_upload_takes_its_owners_storage_until_it_is_deleted(api_client, people, settings):
    client = api_client.as_user(people.owner)
    data = b"PK" + os.urandom(6000)
    reply = client.post(
        "/api/v1/evaluations/uploads/",
        {"file": SimpleUploadedFile("digits.zip", data)},
        format="multipart",
    )
    assert reply.status_code == 201, reply.content
    key = reply.json()["upload_key"]
    assert get_store().size(key) == len(data)
    Quota.objects.create(user=people.owner, storage_bytes=len(data))

    refused = post_check(client)
    assert refused.status_code == 429, refused.content
    assert refused.json()["used"] == len(data)

    # Unused past the grace, the sweeper deletes it: the storage frees up.
    settings.DIGITS_ORPHAN_GRACE_SECONDS = 60
    sweeper.sweep(now=timezone.now() + timedelta(seconds=120))
    assert not get_store().exists(key)
    assert post_check(client).status_code == 201


def test_objects_stored_before_the_ledger_are_recorded_once(api_client, people):
    client = api_client.as_user(people.owner)
    model_id, _ = train(client, ready_dataset(people.owner), team="vision", visibility="team")
    store = get_store()
    store.put(snapshots.key(model_id, 1), os.urandom(3000))  # as before the ledger: no row
    upload = uploads.new_key(people.other, "old.zip")
    store.put(upload, os.urandom(2000))
    out = io.StringIO()

    call_command("record_storage", stdout=out)

    assert "Recorded 1 snapshot(s) and 1 upload(s)." in out.getvalue()
    snapshot = StoredObject.objects.get(key=snapshots.key(model_id, 1))
    assert (snapshot.size, snapshot.owner, snapshot.team) == (3000, people.owner, people.team)
    assert StoredObject.objects.get(key=upload).owner == people.other
    assert post_check(client).status_code == 201
    Quota.objects.create(user=people.other, storage_bytes=2000)
    refused = post_check(api_client.as_user(people.other))
    assert (refused.status_code, refused.json()["used"]) == (429, 2000)
    call_command("record_storage", stdout=out)
    assert "Recorded 0 snapshot(s) and 0 upload(s)." in out.getvalue()
    store.delete(upload)
    store.delete_prefix(snapshots.prefix(model_id))
