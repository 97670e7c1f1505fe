"""The reaper's sweeper: staging and upload objects nothing will publish or delete any more,
and what a deleted job or model left published, are removed once older than the grace;
work in progress, uploads in use and the objects of rows that exist are kept."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core import uploads
from apps.core.storage import get_store
from apps.jobs import sweeper
from apps.jobs.models import Job
from apps.mlmodels.models import TrainedModel
from apps.usage.models import StoredObject
from tests.jobs.helpers import check_params, keys

GRACE = 3600


@pytest.fixture
def grace(settings):
    settings.DIGITS_ORPHAN_GRACE_SECONDS = GRACE
    return GRACE


def later() -> timezone.datetime:
    """A moment when everything written now is older than the grace."""
    return timezone.now() + timedelta(seconds=GRACE + 60)


def job(owner, *, status: str, attempts: int = 1, kind: str = "worker.check", **params) -> Job:
    return Job.objects.create(
        owner=owner, name="j", kind=kind, status=status, attempts=attempts,
        params={**check_params(), **params},
    )  # fmt: skip


def staged(j: Job, attempt: int, name: str = "part.bin") -> str:
    key = f"_staging/jobs/{j.pk}/attempt-{attempt}/{name}"
    get_store().put(key, b"partial")
    return key


def test_orphaned_staging_goes_and_the_running_attempt_stays(db, people, grace):
    running = job(people.owner, status="running", attempts=2)
    ended = job(people.owner, status="error", attempts=1)
    current = staged(running, 2)
    earlier_attempt = staged(running, 1)
    of_ended = staged(ended, 1)
    deleted_job = staged(Job(pk=ended.pk + 1000), 1)
    crashed_write = "_staging/0123456789abcdef.part"
    get_store().put(crashed_write, b"temp")

    assert not any(sweeper.sweep().values())  # all younger than the grace
    counts = sweeper.sweep(now=later())

    remaining = set(keys("_staging/"))
    assert current in remaining
    assert not remaining & {earlier_attempt, of_ended, deleted_job, crashed_write}
    assert counts["staging"] >= 4  # (and what earlier tests of the run left)


def test_uploads_no_job_needs_go_and_those_in_use_stay(db, people, grace):
    owner = people.owner
    unused = uploads.store_bytes(b"a", "unused.zip", owner)
    of_queued_build = uploads.store_bytes(b"b", "queued.zip", owner)
    of_ended_build = uploads.store_bytes(b"c", "ended.zip", owner)
    of_training = uploads.store_bytes(b"d", "model.keras", owner)
    accented = uploads.store_bytes(b"e", "données.zip", owner)
    job(
        owner, status="queued", kind="dataset.build", options={"f": {"upload_key": of_queued_build}}
    )
    job(owner, status="done", kind="dataset.build", options={"f": {"upload_key": of_ended_build}})
    job(owner, status="done", kind="model.train", network={"upload_key": of_training})
    job(owner, status="running", kind="dataset.build", options={"f": {"upload_key": accented}})

    assert sweeper.sweep()["uploads"] == 0
    counts = sweeper.sweep(now=later())
    # The swept uploads no longer take their owner's storage; those in use still do.
    ledger = set(StoredObject.objects.filter(owner=owner).values_list("key", flat=True))
    assert ledger == {of_queued_build, of_training, accented}

    remaining = set(keys(uploads.PREFIX))
    assert {of_queued_build, of_training, accented} <= remaining
    assert not remaining & {unused, of_ended_build}
    assert counts["uploads"] >= 2


def test_what_a_deleted_job_or_model_published_goes_when_its_delete_left_it(db, people, grace):
    """A delete removes its objects after its commit; with the store down then, they stay
    (the rows are gone, as here) until the sweep."""
    from apps.mlmodels import snapshots
    from tests.mlmodels.test_errors import ready_dataset

    store = get_store()
    kept_job, gone_job = (job(people.owner, status="done") for _ in range(2))
    for j in (kept_job, gone_job):
        store.put(f"{j.artifact_prefix}report.json", b"{}")
        store.put(f"{j.artifact_prefix}shards/train-0000.npy", b"x")
    dataset = ready_dataset(people.owner, "swept")
    kept_model, gone_model = (
        TrainedModel.objects.create(owner=people.owner, name=n, dataset=dataset, status="ready")
        for n in ("kept", "gone")
    )
    for m in (kept_model, gone_model):
        store.put(snapshots.key(m.pk, 1), b"tar")
        StoredObject.objects.create(key=snapshots.key(m.pk, 1), size=3, owner=people.owner)
    gone_keys = set(keys(gone_job.artifact_prefix)) | set(keys(snapshots.prefix(gone_model.pk)))
    Job.objects.filter(pk=gone_job.pk).delete()  # the rows go; the store was "down"
    TrainedModel.objects.filter(pk=gone_model.pk).delete()

    assert not any(sweeper.sweep().values())  # younger than the grace: kept
    assert gone_keys <= set(keys("jobs/")) | set(keys("models/"))
    counts = sweeper.sweep(now=later())

    assert not gone_keys & (set(keys("jobs/")) | set(keys("models/")))
    assert len(keys(kept_job.artifact_prefix)) == 2
    assert keys(snapshots.prefix(kept_model.pk)) == [snapshots.key(kept_model.pk, 1)]
    assert counts["jobs"] >= 2 and counts["models"] >= 1  # (and what earlier tests left)
    # What the sweep deleted no longer takes its owner's storage.
    ledger = set(StoredObject.objects.filter(owner=people.owner).values_list("key", flat=True))
    assert ledger == {snapshots.key(kept_model.pk, 1)}


def test_the_reaper_sweeps_at_most_once_per_interval(db, people, settings, monkeypatch):
    calls = []
    monkeypatch.setattr(sweeper, "sweep", lambda: calls.append(1) or {})
    monkeypatch.setattr(sweeper, "_last_sweep", 0.0)
    settings.DIGITS_SWEEP_INTERVAL = 3600
    sweeper.sweep_if_due()
    sweeper.sweep_if_due()
    assert len(calls) == 1
    sweeper.sweep_if_due(interval=0)
    assert len(calls) == 2
