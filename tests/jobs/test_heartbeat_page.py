"""The job page shows the heartbeat's age; the job list can re-read its rows by id."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.jobs.models import Job, JobStatus
from tests.jobs.helpers import submit_check

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_the_job_page_shows_the_heartbeat_age_and_a_stale_one(client, people, settings):
    settings.DIGITS_JOB_STALE_SECONDS = 10
    job = submit_check(people.owner, send=False)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, worker="w:1", heartbeat_at=timezone.now() - timedelta(seconds=3)
    )
    client.force_login(people.owner)

    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-role="heartbeat"' in page
    assert "3 s ago" in page and "stopped responding" not in page

    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=40))
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "40 s ago (the worker stopped responding)" in page


def test_the_api_lists_jobs_by_id(api_client, people):
    jobs = [submit_check(people.owner, send=False) for _ in range(3)]
    client = api_client.as_user(people.owner)

    body = client.get(f"/api/v1/jobs/?id={jobs[0].pk},{jobs[2].pk}").json()

    assert sorted(j["id"] for j in body["results"]) == sorted([jobs[0].pk, jobs[2].pk])
