"""GPU slots, priorities and fair share on a simulated 4-GPU node (real workers and jobs).

The node's GPUs are configured (``DIGITS_WORKER_GPUS=0,1,2,3``), as on a node without
NVML; each job is a worker check, whose result says which ``CUDA_VISIBLE_DEVICES`` its
process saw.
"""

import signal

import pytest

from apps.cluster.models import Device, Reservation
from apps.jobs import reaper
from apps.jobs.models import JobPriority
from tests.conftest import wait_until
from tests.jobs.helpers import (
    gone,
    row,
    runs_on,
    send_message,
    submit_check,
    the_job_process,
    wait_reporting,
    wait_status,
)

NODE = {"DIGITS_WORKER_GPUS": "0,1,2,3", "DIGITS_NODE_NAME": "gpu-node-1"}


def gpus(count: int) -> dict:
    return {"mode": "count", "count": count, "ids": []}


def held(job) -> set[str]:
    return set(Reservation.objects.filter(job=job).values_list("device__ident", flat=True))


def seen(job) -> set[str]:
    """The devices the job's process saw (its CUDA_VISIBLE_DEVICES)."""
    return set(row(job).result["cuda_visible_devices"].split(","))


def test_two_jobs_share_the_node_on_disjoint_gpus_and_a_third_waits(people, start_worker):
    worker = start_worker(threads=3, **NODE)
    assert Device.objects.filter(node__name="gpu-node-1").count() == 4
    short = submit_check(people.owner, steps=10, step_seconds=0.2, gpus=gpus(2))
    long = submit_check(people.owner, steps=60, step_seconds=0.2, gpus=gpus(2))
    wait_reporting(short)
    wait_reporting(long)
    third = submit_check(people.owner, steps=2, step_seconds=0.1, gpus=gpus(2))
    worker.wait_for_log(f"fits this node now (woken for job {third.pk})")

    assert held(short) | held(long) == {"0", "1", "2", "3"}
    assert not held(short) & held(long)
    third_row = row(third)
    assert (third_row.status, third_row.attempts) == ("queued", 0)  # waits, spends nothing

    short = wait_status(short, "done")
    third = wait_status(third, "done", "error")
    assert third.status == "done", third.error
    assert row(long).status == "running"  # started beside it, on the freed devices
    assert seen(short) == {"0", "1"} or seen(short) == {"2", "3"}
    assert seen(third) == seen(short)
    assert third.started_at >= short.finished_at
    assert third.attempts == 1
    assert held(short) == held(third) == set()  # released when they ended
    assert held(long) == {"0", "1", "2", "3"} - seen(short)


def test_a_job_asking_more_gpus_than_the_node_has_waits_and_others_pass(people, start_worker):
    worker = start_worker(threads=2, **NODE)
    big = submit_check(people.owner, steps=1, gpus=gpus(8))
    small = submit_check(people.owner, steps=1, gpus={"mode": "specific", "ids": [3]})
    small = wait_status(small, "done", "error")
    assert small.status == "done", small.error
    assert seen(small) == {"3"}
    worker.wait_for_log(f"fits this node now (woken for job {big.pk})")
    assert (row(big).status, row(big).attempts) == ("queued", 0)


@pytest.fixture
def fast_reaper(settings):
    settings.DIGITS_JOB_STALE_SECONDS = 3
    return settings


def test_devices_of_a_killed_worker_stay_reserved_until_the_reaper_frees_them(
    people, start_worker, fast_reaper
):
    first = start_worker(DIGITS_JOB_HEARTBEAT_SECONDS=1, **NODE)
    whole_node = submit_check(people.owner, steps=20, step_seconds=0.2, gpus=gpus(4))
    wait_reporting(whole_node)
    process = the_job_process(first)
    first.kill(signal.SIGKILL)
    wait_until(lambda: gone(process), timeout=10, message="job process outlived its worker")

    # The worker restarts on the same node: the devices are still recorded as held.
    second = start_worker(threads=2, DIGITS_JOB_HEARTBEAT_SECONDS=1, **NODE)
    assert held(whole_node) == {"0", "1", "2", "3"}
    small = submit_check(people.owner, steps=2, step_seconds=0.1, gpus=gpus(1))
    second.wait_for_log(f"fits this node now (woken for job {small.pk})")
    assert row(small).status == "queued"

    wait_until(lambda: reaper.reap()["retried"], timeout=20, interval=0.2)
    assert not Reservation.objects.filter(worker__contains=f":{first.pid}:").exists()

    for job in (whole_node, small):
        job = wait_status(job, "done", "error")
        assert job.status == "done", job.error
        assert runs_on(job, second)
    assert row(whole_node).attempts == 2 and seen(whole_node) == {"0", "1", "2", "3"}
    assert row(small).started_at >= row(whole_node).finished_at
    assert not Reservation.objects.exists()


def _start_order(jobs) -> list[int]:
    for job in jobs:
        assert wait_status(job, "done", "error").status == "done", row(job).error
    return [j.pk for j in sorted((row(j) for j in jobs), key=lambda j: j.started_at)]


def test_higher_priority_jobs_start_first(people, start_worker):
    owner = people.owner
    low = submit_check(owner, send=False, steps=1, step_seconds=0)
    normal = submit_check(owner, send=False, steps=1, step_seconds=0)
    from apps.jobs.models import Job

    Job.objects.filter(pk=low.pk).update(priority=JobPriority.LOW)
    high = submit_check(owner, send=False, steps=1, step_seconds=0)
    Job.objects.filter(pk=high.pk).update(priority=JobPriority.HIGH)
    start_worker()
    send_message(low)  # a wake-up: the worker takes the best job, not the one named

    assert _start_order([low, normal, high]) == [high.pk, normal.pk, low.pk]


def test_fair_share_lets_a_colleague_in_before_a_sweep_ends(people, start_worker):
    sweep = [submit_check(people.owner, send=False, steps=3, step_seconds=0.1) for _ in range(4)]
    colleague = submit_check(people.other, send=False, steps=3, step_seconds=0.1)
    start_worker(threads=2)
    send_message(sweep[0])
    send_message(sweep[1])

    order = _start_order([*sweep, colleague])
    # First come first served would start the colleague's job last.
    assert order[:2] == [sweep[0].pk, colleague.pk]
    assert order[2:] == [j.pk for j in sweep[1:]]
