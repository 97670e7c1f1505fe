"""A job the object store fails is handed back and retried as an infrastructure failure:
it does not use up the user's attempts, waits with a backoff, and ends in error with a
clear reason only after ``DIGITS_JOB_MAX_INFRA_RETRIES`` hand-backs."""

import pytest
from django.conf import settings as django_settings
from django.db import transaction

from apps.jobs import services
from apps.jobs.models import Job
from tests.conftest import wait_until
from tests.faultproxy import FaultProxy
from tests.jobs.helpers import assert_gap_free, keys, messages, row, staging_root, submit_check


@pytest.fixture
def s3_proxy():
    proxy = FaultProxy.to(django_settings.DIGITS_S3["endpoint"])
    yield proxy
    proxy.close()


def test_a_job_the_store_fails_is_retried_without_using_an_attempt(people, start_workers, s3_proxy):
    start_workers(
        1, DIGITS_S3_ENDPOINT=s3_proxy.address, DIGITS_STORAGE_RETRY_SECONDS=1,
        DIGITS_JOB_INFRA_RETRY_DELAY=1, DIGITS_JOB_HEARTBEAT_SECONDS=1,
    )  # fmt: skip
    s3_proxy.down()  # the job's report.json cannot be stored
    job = submit_check(people.owner, steps=2, step_seconds=0.05)

    handed_back = wait_until(
        lambda: (j := row(job)).infra_retries >= 2 and j, timeout=60,
        message="the job was not handed back for the store outage",
    )  # fmt: skip
    assert handed_back.attempts <= 1 and handed_back.status in ("queued", "running")
    s3_proxy.up()

    done = wait_until(
        lambda: (j := row(job)).status in ("done", "error") and j, timeout=60,
        message="the job did not finish once the store was back",
    )  # fmt: skip
    assert done.status == "done", done.error
    assert done.attempts == 1  # the outage used none of the user's 3 attempts
    assert [a.name for a in done.artifacts.all()] == ["report.json"]
    assert any("Infrastructure fault: retrying in" in m for m in messages(done))
    assert_gap_free(done)
    assert keys(staging_root(done)) == []


def test_a_permanently_broken_store_ends_the_job_with_the_reason(people, settings):
    settings.DIGITS_JOB_MAX_INFRA_RETRIES = 2
    job = submit_check(people.owner, send=False)
    Job.objects.filter(pk=job.pk).update(status="running", attempts=1, infra_retries=2)
    with transaction.atomic():
        status = services.hand_back(Job.objects.select_for_update().get(pk=job.pk), "S3 down.")
    done = row(job)
    assert status == "error" and done.status == "error"
    assert done.error == "S3 down. Gave up after 2 retries for infrastructure faults."
    assert done.attempts == 1


def test_a_hand_back_keeps_the_attempts_and_backs_off(people, settings):
    settings.DIGITS_JOB_INFRA_RETRY_DELAY = 5
    job = submit_check(people.owner, send=False)
    Job.objects.filter(pk=job.pk).update(status="running", attempts=2, infra_retries=1)
    with transaction.atomic():
        services.hand_back(Job.objects.select_for_update().get(pk=job.pk), "S3 down.")
    queued = row(job)
    assert (queued.status, queued.attempts, queued.infra_retries) == ("queued", 1, 2)
    assert "retrying in 10 s (attempts unchanged)" in queued.status_text


def test_only_an_unreachable_store_counts_as_an_infrastructure_fault():
    from apps.core.storage import StoreUnavailable
    from apps.jobs.child import infrastructure_fault

    def raised(exc, cause=None):
        try:
            try:
                raise cause or exc
            except Exception as inner:
                if cause is None:
                    raise
                raise exc from inner
        except Exception as outer:
            return outer

    assert infrastructure_fault(raised(StoreUnavailable("S3 unreachable")))
    # A job's code that wraps the store's error is still failed by the infrastructure.
    assert infrastructure_fault(raised(RuntimeError("saving the snapshot"), StoreUnavailable()))
    assert not infrastructure_fault(raised(OSError("S3 refused: AccessDenied")))
    assert not infrastructure_fault(raised(ValueError("bad network")))
