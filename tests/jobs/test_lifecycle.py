"""A job's life on real worker processes: run to done on either broker, queue routing, failure."""

import json
import os

import dramatiq
import pytest
from django.db import transaction
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from apps.core.storage import get_store
from apps.jobs import services
from apps.jobs.models import JobSeries
from apps.jobs.tasks import actor_for_queue
from tests.conftest import wait_until
from tests.jobs.helpers import (
    assert_gap_free,
    keys,
    messages,
    row,
    runs_on,
    send_message,
    stage_leftover,
    staging_root,
    statuses,
    submit_check,
    wait_status,
)


@pytest.fixture
def rabbitmq(monkeypatch):
    """Route this test's job messages through RabbitMQ; return the URL a worker consumes.

    The test process's own broker is Redis (its settings), so ``services.enqueue``
    is pointed at a RabbitMQ broker built here; it still sends on commit.
    """
    url = os.environ["DIGITS_TEST_RABBITMQ_URL"]
    broker = RabbitmqBroker(url=url)
    broker.declare_queue("default", ensure=True)
    broker.flush("default")  # messages left by an interrupted run

    def enqueue(job):
        actor = actor_for_queue(job.queue)
        message = dramatiq.Message(
            queue_name=job.queue, actor_name=actor.actor_name, args=(job.pk,), kwargs={}, options={}
        )
        transaction.on_commit(lambda: broker.enqueue(message))

    monkeypatch.setattr(services, "enqueue", enqueue)
    yield url
    broker.close()


# RabbitMQ's queues are not namespaced: under pytest-xdist one worker runs these (loadgroup).
@pytest.fixture(params=["redis", pytest.param("rabbitmq", marks=pytest.mark.xdist_group("amqp"))])
def broker_url(request):
    """The URL of the broker a worker consumes; the test's submissions go through it too."""
    if request.param == "rabbitmq":
        return request.getfixturevalue("rabbitmq")
    return None  # the settings' broker: Redis


def test_job_runs_to_done_and_publishes_its_artifacts(people, start_worker, broker_url):
    start_worker(broker_url=broker_url)
    job = submit_check(people.owner, steps=5)
    assert job.status == "queued" and job.attempts == 0

    job = wait_status(job, "done", "error", "aborted", timeout=60)

    assert job.status == "done", job.error
    assert job.progress == 1.0
    assert job.attempts == 1
    assert job.error == ""
    assert job.finished_at >= job.started_at
    assert job.result["steps"] == 5 and job.result["matrix_size"] == 32
    assert statuses(job) == ["queued", "running", "done"]
    assert_gap_free(job)
    metrics = [d for d in job.events.filter(type="metric").values_list("data", flat=True)]
    assert sorted(d["step"] for d in metrics if d["series"] == "gflops") == [1, 2, 3, 4, 5]
    # its charts' cut series kept for every web process, covering all its events
    stored = wait_until(
        lambda: JobSeries.objects.filter(job=job, last_seq=job.last_seq).first(),
        message="the runner stored no cut of the series",
    )
    assert dict(stored.counts)["gflops"] == 5
    # published: a row per artifact, the bytes under the job's prefix, staging gone
    assert [(a.name, a.key) for a in job.artifacts.all()] == [
        ("report.json", f"{job.artifact_prefix}report.json")
    ]
    report = json.loads(get_store().get(f"{job.artifact_prefix}report.json"))
    assert report == job.result
    assert job.artifacts.get().size == len(get_store().get(f"{job.artifact_prefix}report.json"))
    assert keys(staging_root(job)) == []


def test_job_runs_only_on_a_worker_of_its_queue(people, start_worker):
    default_worker = start_worker(queues=("default",))
    gpu_job = submit_check(people.owner, queue="gpu", steps=2)
    assert gpu_job.queue == "gpu"
    cpu_job = submit_check(people.owner, steps=2)

    # The default worker handles the job behind the GPU job, never the GPU job itself.
    wait_status(cpu_job, "done")
    assert runs_on(cpu_job, default_worker)
    gpu_job = row(gpu_job)
    assert (gpu_job.status, gpu_job.attempts, gpu_job.worker) == ("queued", 0, "")

    gpu_worker = start_worker(queues=("gpu",))
    gpu_job = wait_status(gpu_job, "done", "error")
    assert gpu_job.status == "done", gpu_job.error
    assert runs_on(gpu_job, gpu_worker)
    assert gpu_job.attempts == 1


def test_failing_job_reports_error_and_publishes_nothing(people, start_worker):
    start_worker()
    job = submit_check(people.owner, send=False, steps=5, fail_at_step=3)
    leftover = stage_leftover(job)  # what a failed attempt leaves behind in staging
    send_message(job)

    job = wait_status(job, "done", "error", "aborted")

    assert job.status == "error"
    assert "failing at step 3" in job.error
    assert job.error.startswith("RuntimeError")
    assert job.result == {}
    assert job.progress < 1.0
    assert statuses(job) == ["queued", "running", "error"]
    tracebacks = [m for m in messages(job) if m.startswith("Traceback (most recent call last)")]
    assert len(tracebacks) == 1
    assert "RuntimeError: failing at step 3" in tracebacks[0]
    assert "diagnostics.py" in tracebacks[0]
    assert_gap_free(job)
    # nothing published, the attempt's staging thrown away
    assert not job.artifacts.exists()
    assert keys(job.artifact_prefix) == []
    assert leftover.startswith(staging_root(job))
    wait_until(lambda: keys(staging_root(job)) == [], timeout=10)
