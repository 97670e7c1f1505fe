"""/metrics: queue depth and age, unsent and stale jobs, the reaper's last pass, in the
Prometheus text format, for staff or the scraper's token only."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.jobs import liveness, reaper
from apps.jobs.models import Job, JobStatus
from tests.jobs.helpers import submit_check

pytestmark = pytest.mark.usefixtures("transactional_db")


def sample(text: str, name: str, **labels) -> float:
    label = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = "^" + re.escape(f"{name}{{{label}}}" if label else name) + r" (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{name} {labels} not in:\n{text}"
    return float(match.group(1))


def test_metrics_need_staff_or_the_token(client, people, settings):
    assert client.get("/metrics").status_code == 403
    client.force_login(people.owner)
    assert client.get("/metrics").status_code == 403
    settings.DIGITS_METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")


def test_metrics_show_queues_stale_heartbeats_and_the_reaper(client, people, settings, tmp_path):
    settings.DIGITS_LIVENESS_DIR = str(tmp_path)
    settings.DIGITS_JOB_STALE_SECONDS = 10
    old = submit_check(people.owner, send=False)
    Job.objects.filter(pk=old.pk).update(enqueued_at=timezone.now() - timedelta(seconds=90))
    submit_check(people.owner, send=False, queue="gpu")
    lost = submit_check(people.owner, send=False)
    Job.objects.filter(pk=lost.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(seconds=30)
    )
    client.force_login(people.staff)

    text = client.get("/metrics").content.decode()

    assert sample(text, "digits_jobs_queued", queue="default") == 1
    assert sample(text, "digits_jobs_queued", queue="gpu") == 1
    assert 89 <= sample(text, "digits_jobs_oldest_queued_age_seconds", queue="default") < 120
    assert sample(text, "digits_jobs_unsent", queue="default") == 1  # never sent
    assert sample(text, "digits_jobs_stale_heartbeats") == 1
    assert sample(text, "digits_jobs_heartbeat_max_age_seconds") >= 30
    assert "digits_reaper_last_pass_age_seconds +Inf" in text  # no reaper ran

    reaper.reap()
    liveness.beat("reaper", dict(reaper.COUNTERS))
    text = client.get("/metrics").content.decode()

    assert sample(text, "digits_jobs_stale_heartbeats") == 0
    assert sample(text, "digits_reaper_last_pass_age_seconds") < 5
    process = re.search(r'digits_reaper_resent_total\{process="([^"]+)"\}', text).group(1)
    assert (
        sample(text, "digits_reaper_jobs_handed_back_total", outcome="retried", process=process)
        >= 1
    )
    assert liveness.age("reaper") < 5


def test_store_retries_and_failures_are_counted_per_process(client, people, settings, tmp_path):
    settings.DIGITS_LIVENESS_DIR = str(tmp_path)
    from apps.core.storage import stats

    client.force_login(people.staff)
    before = stats.snapshot()
    stats.count("retries")
    stats.count("retries")
    stats.count("failures")
    liveness.beat("reaper", {"store_retries": 7, "store_failures": 1})

    text = client.get("/metrics").content.decode()

    assert sample(text, "digits_store_retries_total") == before["retries"] + 2
    assert sample(text, "digits_store_failures_total") == before["failures"] + 1
    process = re.search(r'digits_store_retries_total\{process="([^"]+)"\}', text).group(1)
    assert sample(text, "digits_store_retries_total", process=process) == 7
    assert sample(text, "digits_store_failures_total", process=process) == 1
