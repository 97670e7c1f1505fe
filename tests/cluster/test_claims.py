"""Claims on one node, in the database: who gets which devices, and when the reaper frees them.

The test process plays the worker threads of node ``gpu-node-1`` (4 configured GPUs),
claiming through ``scheduling.claim`` as ``runner.execute`` does.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.cluster import agent, scheduling
from apps.cluster.models import Reservation
from apps.jobs import reaper
from apps.jobs.models import Job, JobPriority
from tests.jobs.helpers import row, submit_check

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture(autouse=True)
def node(settings, transactional_db):
    settings.DIGITS_WORKER_GPUS = "0,1,2,3"
    settings.DIGITS_NODE_NAME = "gpu-node-1"
    return agent.report(["default"], 4)


def gpus(count):
    return {"mode": "count", "count": count, "ids": []}


def submit(user, count, priority=JobPriority.NORMAL):
    job = submit_check(user, send=False, gpus=gpus(count) if count else {"mode": "none"})
    Job.objects.filter(pk=job.pk).update(priority=priority)
    return job


def test_a_waiting_job_keeps_lower_priority_jobs_off_the_gpus_it_waits_for(people):
    running = submit(people.owner, 2)
    assert scheduling.claim("w1", "default").job.pk == running.pk
    wide = submit(people.owner, 4, JobPriority.HIGH)
    narrow = submit(people.other, 1)
    cpu_only = submit(people.other, 0)

    # The wide job waits for the busy GPUs; the narrow one may not take the free ones,
    # the CPU-only one may run (it takes no GPU).
    claimed = scheduling.claim("w2", "default")
    assert claimed.job.pk == cpu_only.pk and claimed.devices == []
    assert claimed.environment() == {"CUDA_VISIBLE_DEVICES": "", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert scheduling.claim("w3", "default") is None
    assert (row(wide).status, row(narrow).status) == ("queued", "queued")
    assert (row(wide).attempts, row(narrow).attempts) == (0, 0)

    scheduling.release(running.pk, "w1")
    Job.objects.filter(pk=running.pk).update(status="done")
    assert scheduling.claim("w1", "default").job.pk == wide.pk


def test_same_priority_jobs_fill_the_free_gpus_meanwhile(people):
    running = submit(people.owner, 2)
    scheduling.claim("w1", "default")
    submit(people.owner, 4)
    narrow = submit(people.other, 1)
    claimed = scheduling.claim("w2", "default")
    assert claimed.job.pk == narrow.pk
    assert set(claimed.devices).isdisjoint(
        Reservation.objects.filter(job=running).values_list("device__ident", flat=True)
    )


def test_sharing_lets_jobs_hold_the_same_gpus_when_the_admin_allows_it(people, settings):
    first, second = submit(people.owner, 4), submit(people.owner, 4)
    assert scheduling.claim("w1", "default").job.pk == first.pk
    assert scheduling.claim("w2", "default") is None
    settings.DIGITS_GPU_SHARING = True
    claimed = scheduling.claim("w2", "default")
    assert claimed.job.pk == second.pk and claimed.devices == ["0", "1", "2", "3"]


def test_the_reaper_frees_only_reservations_of_jobs_that_no_longer_run_there(people):
    live, finished = submit(people.owner, 1), submit(people.owner, 1)
    scheduling.claim("w1", "default")
    scheduling.claim("w2", "default")
    Job.objects.filter(pk=finished.pk).update(status="error")

    reaper.reap()

    assert list(Reservation.objects.values_list("job_id", flat=True)) == [live.pk]
    Job.objects.filter(pk=live.pk).update(worker="someone-else")  # requeued and claimed anew
    reaper.reap()
    assert not Reservation.objects.exists()


@pytest.fixture
def held_when_sent(monkeypatch) -> list[tuple[int, int]]:
    """``(job id, its reservations)`` at each job message sent on commit (not sent)."""
    from apps.jobs import outbox

    sent = []
    monkeypatch.setattr(
        outbox, "publish_on_commit",
        lambda job_id, queue, delay_ms=None: sent.append(
            (job_id, Reservation.objects.filter(job_id=job_id).count())
        ),
    )  # fmt: skip
    return sent


def test_a_retried_jobs_wake_up_is_sent_once_its_devices_are_free(people, held_when_sent):
    """The reaper's retry message wakes a worker, which claims at once: the lost worker's
    reservations must be gone by then, or the job does not fit, the message is spent and
    the job waits for the reaper's resend (minutes)."""
    job = submit(people.owner, 4)
    assert scheduling.claim("lost-worker", "default").job.pk == job.pk
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    assert reaper.reap()["retried"] == 1

    assert held_when_sent == [(job.pk, 0)]
    assert scheduling.claim("w2", "default").job.pk == job.pk


@pytest.mark.parametrize("requeue", ["requeue_or_fail", "hand_back"])
def test_a_job_requeued_by_its_worker_frees_its_devices_before_its_message(
    people, held_when_sent, requeue
):
    """A killed job process retried, or an infrastructure fault handed back: the same, the
    worker's own release after the run comes too late for the message."""
    from django.db import transaction

    from apps.jobs import services

    job = submit(people.owner, 2)
    assert scheduling.claim("w1", "default").job.pk == job.pk

    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        assert getattr(services, requeue)(locked, "lost") == "queued"

    assert held_when_sent == [(job.pk, 0)]


@pytest.mark.parametrize("outcome", ["done", "error", "aborted"])
def test_a_job_frees_its_devices_with_its_final_status(people, outcome):
    """Nobody sees a finished job on a GPU: the reservation goes in the transaction that
    records the outcome, not after it (the worker's own release comes later)."""
    from apps.jobs import services

    job = submit(people.owner, 2)
    claimed = scheduling.claim("w1", "default")
    assert claimed.job.pk == job.pk and Reservation.objects.filter(job=job).count() == 2
    job = claimed.job

    if outcome == "done":
        services.complete(job, {"ok": True})
    elif outcome == "error":
        services.fail(job, "it broke")
    else:
        services.mark_aborted(job)

    assert row(job).status == outcome
    assert not Reservation.objects.filter(job=job).exists()
