"""Aborting jobs through the REST API: running, queued and finished jobs."""

import time

from apps.jobs import services
from apps.jobs.models import Job, JobStatus
from tests.conftest import wait_until
from tests.jobs.helpers import (
    assert_gap_free,
    elapsed_since,
    gone,
    job_processes,
    keys,
    messages,
    no_messages,
    row,
    send_message,
    stage_leftover,
    staging_root,
    statuses,
    submit_check,
    the_job_process,
    wait_reporting,
)

ABORT_WITHIN_SECONDS = 5  # documented: a running job stops within seconds


def abort_url(job):
    return f"/api/v1/jobs/{job.pk}/abort/"


def test_abort_running_job_stops_its_process_within_5_seconds(people, start_worker, api_client):
    worker = start_worker()
    job = submit_check(people.owner, send=False, steps=200, step_seconds=0.2)
    leftover = stage_leftover(job)
    send_message(job)
    wait_reporting(job)
    process = the_job_process(worker)
    client = api_client.as_user(people.owner)

    started = time.monotonic()
    response = client.post(abort_url(job))
    assert response.status_code == 200, response.content
    assert response.json()["abort_requested"] is True
    wait_until(
        lambda: row(job).status == JobStatus.ABORTED,
        timeout=ABORT_WITHIN_SECONDS + 5,
        interval=0.05,
    )
    took = elapsed_since(started)

    assert took < ABORT_WITHIN_SECONDS, f"abort took {took:.1f} s"
    job = row(job)
    assert job.progress < 1.0 and job.error == ""
    assert statuses(job)[-1] == "aborted"
    assert f"Abort requested by {people.owner.username}." in messages(job)
    assert_gap_free(job)
    # The job process is gone and nothing was published.
    wait_until(lambda: gone(process), timeout=5)
    assert job_processes(worker) == []
    assert not job.artifacts.exists()
    assert keys(job.artifact_prefix) == []
    assert leftover.startswith(staging_root(job))
    wait_until(lambda: keys(staging_root(job)) == [], timeout=10)
    # The worker is free again: the next job runs.
    nxt = submit_check(people.owner, steps=1)
    wait_until(lambda: row(nxt).status == JobStatus.DONE, timeout=30)


def test_abort_kills_a_job_stuck_in_a_long_step_within_5_seconds(people, start_worker, api_client):
    """A job that does not check for aborts (one 60 s step) is killed after the grace period."""
    worker = start_worker()
    job = submit_check(people.owner, steps=2, step_seconds=60)
    wait_reporting(job)  # step 1 computed, now sleeping through the rest of its 60 s
    process = the_job_process(worker)

    started = time.monotonic()
    response = api_client.as_user(people.owner).post(abort_url(job))
    assert response.status_code == 200, response.content
    wait_until(lambda: row(job).status == JobStatus.ABORTED, timeout=15, interval=0.05)
    took = elapsed_since(started)

    assert took < ABORT_WITHIN_SECONDS, f"abort took {took:.1f} s"
    wait_until(lambda: gone(process), timeout=5)
    assert job_processes(worker) == []
    assert not row(job).artifacts.exists()


def test_abort_queued_job_is_immediate(people, api_client):
    job = submit_check(people.owner, send=False)  # no worker anywhere: it stays queued
    response = api_client.as_user(people.owner).post(abort_url(job))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "aborted"
    assert body["abort_requested"] is True
    job = row(job)
    assert job.status == JobStatus.ABORTED and job.attempts == 0 and job.finished_at is not None
    assert statuses(job) == ["queued", "aborted"]
    # A message that arrives later does not start it.
    assert services.claim(job.pk, "late-worker") is None
    assert row(job).status == JobStatus.ABORTED


def test_abort_finished_job_is_a_conflict(people, api_client):
    job = submit_check(people.owner, send=False)
    services.mark_aborted(Job.objects.get(pk=job.pk))
    last_seq = row(job).last_seq

    response = api_client.as_user(people.owner).post(abort_url(job))

    assert response.status_code == 409
    assert "already aborted" in response.json()["detail"]
    assert row(job).last_seq == last_seq  # no event recorded


def test_abort_needs_change_permission(people, api_client):
    private = submit_check(people.owner, send=False)
    with no_messages():
        shared = services.submit(
            owner=people.owner, kind="worker.check", params=private.params,
            team=people.team, visibility="team",
        )  # fmt: skip

    # Someone who cannot see the job: it does not exist for them.
    assert api_client.as_user(people.other).post(abort_url(private)).status_code == 404
    # A team viewer sees the shared job but may not stop it; a member may.
    assert api_client.as_user(people.team_viewer).post(abort_url(shared)).status_code == 403
    assert row(shared).status == "queued" and not row(shared).abort_requested
    assert api_client.as_user(people.team_member).post(abort_url(shared)).status_code == 200
    assert row(shared).status == "aborted"
    assert row(private).status == "queued"
