"""Object store and database faults, injected into the platform run as a cluster.

The worker processes reach S3 and PostgreSQL through proxies this module owns
(``tests.faultproxy``): "S3 down" is its S3 proxy resetting every connection, a
"PostgreSQL restart" its database proxy dropping every connection and refusing new ones
for a few seconds. The shared servers themselves are never touched. Per fault the tests
assert that the job finishes without a user action, with its attempts unchanged, its
events gap-free, no staging or upload object left behind, and within a stated time.
"""

import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from apps.core.storage import get_store
from apps.datasets.models import Dataset
from apps.jobs.models import Job
from tests.conftest import database_url, grant_custom_code, wait_until
from tests.faultproxy import FaultProxy
from tests.jobs.helpers import assert_gap_free, keys, messages, staging_root, submit_check

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(900)]

FAST = {"DIGITS_JOB_HEARTBEAT_SECONDS": 1, "DIGITS_JOB_INFRA_RETRY_DELAY": 1}
#: After PostgreSQL is back, an idle worker runs the next job within this (the reaper's
#: resend would take DIGITS_JOB_REQUEUE_SECONDS, 120 s).
DB_RECOVERY_BOUND = 15
#: After S3 is back, a handed-back training is claimed again within this: its backoff
#: (1, 2, 4, 8 s ... from DIGITS_JOB_INFRA_RETRY_DELAY=1) plus a claim.
S3_RECOVERY_BOUND = 20
#: ... and logs its next epoch within this (a new job process: TensorFlow's import, the
#: restore of the snapshot and one epoch of a small LeNet, on a busy 2-core machine).
S3_TRAINING_BOUND = 90


@pytest.fixture
def s3_proxy():
    proxy = FaultProxy.to(django_settings.DIGITS_S3["endpoint"])
    yield proxy
    proxy.close()


@pytest.fixture
def db_proxy(transactional_db):
    """Requested before the workers: closed after they stopped, and their sessions ended."""
    url = urlsplit(database_url())
    proxy = FaultProxy(url.hostname, url.port or 5432).start()
    proxy.url = urlunsplit(url._replace(netloc=f"{url.username}@{proxy.address}"))
    yield proxy
    proxy.close()
    # A session of the stopped processes may linger on the per-run test database (only
    # there: the shared server is not touched), which would keep it from being dropped.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def the_job(pk: int) -> Job:
    return Job.objects.get(pk=pk)


def finished(pk: int, timeout: float = 400) -> Job:
    return wait_until(
        lambda: (j := the_job(pk)).status in ("done", "error", "aborted") and j,
        timeout=timeout, interval=0.5, message=f"job {pk} did not finish in {timeout} s",
    )  # fmt: skip


def assert_no_orphans(job: Job) -> None:
    assert keys(staging_root(job)) == []
    assert keys(f"uploads/{job.owner_id}/") == []


def test_an_idle_worker_runs_the_next_job_at_once_after_a_database_restart(
    db_proxy, people, start_worker
):
    start_worker(DATABASE_URL=db_proxy.url, **FAST)  # no reaper: nothing would resend it
    warm = submit_check(people.owner, steps=1, step_seconds=0)
    assert finished(warm.pk, timeout=60).status == "done"  # the worker holds a connection

    db_proxy.outage(3)  # every connection dropped, new ones refused for 3 s
    wait_until(lambda: db_proxy.up_at, timeout=10)
    restarted = time.monotonic()
    job = submit_check(people.owner, steps=1, step_seconds=0)

    done = finished(job.pk, timeout=DB_RECOVERY_BOUND + 30)
    took = time.monotonic() - restarted
    print(f"job done {took:.1f} s after the database came back")
    assert done.status == "done", done.error
    assert took < DB_RECOVERY_BOUND
    assert done.attempts == 1
    assert_gap_free(done)


@pytest.mark.tensorflow
def test_a_training_survives_an_s3_outage_without_using_an_attempt(
    people, api_client, start_worker, start_process, s3_proxy, tmp_path, settings,
    built_datasets,
):  # fmt: skip
    from apps.mlmodels import snapshots
    from tests.builds import shared_dataset
    from tests.mlmodels.helpers import build_dataset, create_model, epoch_lines, log_lines

    data_root = (tmp_path / "data").resolve()
    data_root.mkdir()
    settings.DIGITS_SERVER_DATA_ROOTS = [data_root]
    start_worker(
        queues=("default", "gpu"), threads=2, DIGITS_S3_ENDPOINT=s3_proxy.address,
        DIGITS_SERVER_DATA_ROOTS=str(data_root), DIGITS_DATA_DIR=str(tmp_path / "var"),
        DIGITS_STORAGE_RETRY_SECONDS=3, **FAST,
    )  # fmt: skip
    start_process("manage.py", "reaper", env={"DIGITS_REAPER_INTERVAL": 1}, name="reaper")
    api = api_client.as_user(grant_custom_code(people.owner))
    dataset = shared_dataset(  # the tests' digits, built once per test process
        built_datasets, ("digits", 16, 40), people.owner,
        lambda: build_dataset(api, data_root, size=16, per_class=40, name="small"),
        name="small",
    )  # fmt: skip
    epochs = 8
    model = create_model(
        api, dataset, "outage", epochs=epochs, batch_size=8, snapshot_interval=1,
        metrics_every=10,
    )  # fmt: skip
    wait_until(lambda: len(snapshots.epochs(model["id"])) >= 2, timeout=300, interval=0.2)

    s3_proxy.outage(12)  # longer than the workers' 3 s of retries: the job is handed back
    job = wait_until(
        lambda: (j := the_job(model["job"])).infra_retries and j, timeout=60, interval=0.2
    )
    wait_until(lambda: s3_proxy.up_at, timeout=30)
    back = time.time()
    done = finished(job.pk)
    assert done.status == "done", done.error
    assert done.attempts == 1 and done.infra_retries >= 1
    evs = list(done.events.order_by("seq").values_list("type", "data", "created_at"))
    handed = next(i for i, (t, d, _) in enumerate(evs) if "Infrastructure fault" in str(d))
    rerun = next(c for t, d, c in evs[handed:] if t == "status" and d["status"] == "running")
    claimed = max(0.0, rerun.timestamp() - back)  # 0: claimed again before S3 returned
    epoch = next(
        c for t, d, c in evs[handed:]
        if t == "log" and epoch_lines([d.get("message", "")]) and c.timestamp() > back
    )  # fmt: skip
    trained = epoch.timestamp() - back
    print(f"after S3 came back: claimed again {claimed:.1f} s, next epoch {trained:.1f} s")
    assert claimed < S3_RECOVERY_BOUND
    assert trained < S3_TRAINING_BOUND
    assert any("Infrastructure fault" in m for m in messages(done))

    result = done.result
    assert [e["epoch"] for e in result["epochs"]] == list(range(1, epochs + 1))
    assert result["snapshots"] == list(range(1, epochs + 1))
    lines = epoch_lines(log_lines(done))
    # Every epoch logged, but for one whose run was cut between its snapshot and its log
    # line (its metrics are in the result); at most one epoch trained twice per hand-back.
    assert len(set(range(1, epochs + 1)) - set(lines)) <= done.infra_retries
    assert len(lines) - len(set(lines)) <= done.infra_retries
    assert snapshots.epochs(model["id"]) == list(range(1, epochs + 1))
    assert_gap_free(done)
    assert_no_orphans(done)


def digits_zip(path) -> bytes:
    import zipfile

    from tests.mlmodels.helpers import digits, png

    images, labels = digits()
    with zipfile.ZipFile(path, "w") as zf:
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            zf.writestr(f"{label}/img_{i:04d}.png", png(image))
    return path.read_bytes()


def test_a_dataset_build_rides_out_an_s3_outage(
    people, api_client, start_worker, s3_proxy, tmp_path
):
    import json

    start_worker(
        queues=("default",), DIGITS_S3_ENDPOINT=s3_proxy.address,
        DIGITS_DATA_DIR=str(tmp_path / "var"), DIGITS_STORAGE_RETRY_SECONDS=30, **FAST,
    )  # fmt: skip
    api = api_client.as_user(people.owner)
    options = {"source": "archive", "width": 28, "height": 28, "val_percent": 25}
    reply = api.post(
        "/api/v1/datasets/",
        {"type": "image-classification", "name": "outage", "options": json.dumps(options),
         "archive": SimpleUploadedFile("digits.zip", digits_zip(tmp_path / "d.zip")),
         "processes": "1"},
        format="multipart",
    )  # fmt: skip
    assert reply.status_code == 201, reply.content
    dataset_id = reply.json()["id"]
    job_id = Dataset.objects.get(pk=dataset_id).job_id
    wait_until(
        lambda: the_job(job_id).status == "running" and the_job(job_id).progress > 0,
        timeout=120, interval=0.1,
    )  # fmt: skip
    s3_proxy.outage(10)  # shorter than the 30 s of retries: calls wait, nothing fails

    done = finished(job_id, timeout=300)
    assert s3_proxy.refused > 0, "the outage came after the build had finished"
    assert done.status == "done", done.error
    assert done.attempts == 1
    dataset = Dataset.objects.get(pk=dataset_id)
    assert dataset.status == "ready"
    stages = dataset.manifest["stages"].values()
    assert sum(stage["count"] for stage in stages) == 1797  # no image lost or doubled
    assert_gap_free(done)
    wait_until(lambda: not keys(f"uploads/{people.owner.pk}/"), timeout=30)
    assert_no_orphans(done)
    assert get_store().exists(dataset.data_prefix + "labels.txt")
