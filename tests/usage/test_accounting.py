"""Usage accounting on real job processes: the figures a job records are the ones measured
(its run time against its started/finished timestamps, its CPU time and memory against the
process sampled while it ran), and the usage page and API (JSON, CSV) add them up."""

import csv
import io

import psutil
import pytest

from apps.jobs import services
from apps.usage.models import JobUsage
from tests.conftest import wait_until
from tests.jobs.helpers import check_params, gone, the_job_process, wait_status

TOLERANCE = 1.5  # seconds between the job's timestamps and its process's life


def sample_until_gone(proc: psutil.Process) -> dict:
    """The largest CPU time and resident memory seen while the process ran."""
    seen = {"cpu": 0.0, "rss": 0}
    while not gone(proc):
        try:
            times, rss = proc.cpu_times(), proc.memory_info().rss
        except psutil.NoSuchProcess:
            break
        seen["cpu"] = max(seen["cpu"], times.user + times.system)
        seen["rss"] = max(seen["rss"], rss)
    return seen


@pytest.fixture
def measured_job(people, start_worker):
    """A worker check on the GPU queue (one GPU asked for), run by a real worker, with its
    process sampled while it runs."""
    worker = start_worker(queues=("gpu",))
    job = services.submit(
        owner=people.owner, kind="worker.check", team=people.team, visibility="team",
        params=check_params(queue="gpu", steps=12, step_seconds=0.05, matrix_size=384),
    )  # fmt: skip
    seen = sample_until_gone(the_job_process(worker))
    job = wait_status(job, "done", "error", timeout=60)
    assert job.status == "done", job.error
    usage = wait_until(lambda: JobUsage.objects.filter(job=job, attempts=1).first())
    return job, usage, seen


def test_usage_equals_the_measured_times(measured_job):
    job, usage, seen = measured_job
    ran = (job.finished_at - job.started_at).total_seconds()
    assert usage.wall_seconds <= ran + 0.1  # the process lives inside the job's run
    assert usage.wall_seconds >= ran - TOLERANCE
    assert usage.wall_seconds >= 12 * 0.05  # at least its steps' pauses
    assert (usage.gpus, usage.gpu_seconds) == (1, pytest.approx(usage.wall_seconds))
    # os.wait4's figures: at least what sampling saw, CPU time no more than it could use
    assert seen["cpu"] > 0 and seen["rss"] > 0
    assert seen["cpu"] <= usage.cpu_seconds <= usage.wall_seconds * psutil.cpu_count() + 0.1
    # The kernel's per-thread RSS counters lag by up to 64 pages each: 2 % of slack.
    assert usage.peak_memory_bytes >= seen["rss"] * 0.98
    assert usage.peak_memory_bytes < 4 * 2**30
    assert usage.bytes_written == job.artifacts.get().size > 0
    assert (usage.owner, usage.team, usage.kind, usage.attempts) == (
        job.owner, job.team, "worker.check", 1,
    )  # fmt: skip


def test_usage_outlives_the_job(measured_job):
    job, usage, _ = measured_job
    services.delete(job)
    kept = JobUsage.objects.get(pk=usage.pk)
    assert kept.job is None and kept.job_number == job.pk
    assert kept.gpu_seconds == usage.gpu_seconds


def test_the_api_and_csv_report_the_recorded_figures(measured_job, api_client, people):
    job, usage, _ = measured_job
    month = job.started_at.strftime("%Y-%m")
    client = api_client.as_user(people.team_viewer)  # a member of the job's team

    by_month = client.get("/api/v1/usage/", {"team": "vision"})
    as_csv = client.get("/api/v1/usage/", {"team": "vision", "group": "kind", "format": "csv"})
    own = client.get("/api/v1/usage/")  # victor's own: nothing

    assert by_month.status_code == 200, by_month.content
    [row] = by_month.json()["rows"]
    assert row["month"] == month and row["jobs"] == 1
    assert row["gpu_seconds"] == pytest.approx(usage.gpu_seconds, abs=0.001)
    assert row["cpu_seconds"] == pytest.approx(usage.cpu_seconds, abs=0.001)
    assert row["peak_memory_bytes"] == usage.peak_memory_bytes
    assert row["bytes_written"] == usage.bytes_written
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    assert "attachment" in as_csv["Content-Disposition"]
    [line] = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert line["kind"] == "worker.check"
    assert float(line["wall_seconds"]) == pytest.approx(usage.wall_seconds, abs=0.001)
    assert own.json()["rows"] == []


def test_the_usage_page_shows_the_month_and_the_model(measured_job, client, people):
    job, usage, _ = measured_job
    client.force_login(people.owner)
    page = client.get("/usage/")
    assert page.status_code == 200
    assert page.context["scope"] == "user olivia"
    [row] = page.context["rows"]
    assert row["jobs"] == 1 and row["gpu_seconds"] == pytest.approx(usage.gpu_seconds, abs=0.001)
    assert job.started_at.strftime("%Y-%m") in page.content.decode()
    [by_model] = client.get("/usage/", {"group": "model"}).context["rows"]
    assert by_model["model_id"] is None  # a worker check trains no model
