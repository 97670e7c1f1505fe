"""Small helpers shared by the job engine tests.

Jobs are ``worker.check`` jobs (apps.jobs.diagnostics): a few timed steps whose
count, length and failure point the test chooses.
"""

from __future__ import annotations

import socket
import time
from contextlib import contextmanager
from unittest import mock

import psutil

from apps.core.storage import get_store
from apps.jobs import services
from apps.jobs.models import Job
from apps.jobs.tasks import actor_for_queue
from tests.conftest import wait_until

CHECK_DEFAULTS = {
    "queue": "default",
    "steps": 5,
    "step_seconds": 0.1,
    "matrix_size": 32,
    "use_tensorflow": False,
    "fail_at_step": None,
}


def check_params(**params) -> dict:
    return {**CHECK_DEFAULTS, **params}


@contextmanager
def no_messages():
    """Inside: ``services.enqueue`` sends nothing (a message lost between commit and send)."""
    with mock.patch.object(services, "enqueue") as enqueue:
        yield enqueue


def submit_check(user, *, send: bool = True, **params) -> Job:
    """Submit a worker check; with ``send=False`` the job is queued but no message is sent."""
    if send:
        return services.submit(owner=user, kind="worker.check", params=check_params(**params))
    with no_messages():
        return services.submit(owner=user, kind="worker.check", params=check_params(**params))


def send_message(job: Job) -> None:
    """Put (another) message for ``job`` on its queue, through the test's own broker."""
    actor_for_queue(job.queue).send(job.pk)


def row(job: Job) -> Job:
    return Job.objects.get(pk=job.pk)


def wait_status(job: Job, *statuses: str, timeout: float = 30) -> Job:
    return wait_until(
        lambda: Job.objects.filter(pk=job.pk, status__in=statuses).first(),
        timeout=timeout,
        interval=0.05,
        message=f"job {job.pk} did not reach {statuses}; it is {row(job).status}",
    )


def wait_reporting(job: Job, timeout: float = 30) -> Job:
    """Wait until the job runs and its process has reported progress (it is mid-way)."""
    return wait_until(
        lambda: Job.objects.filter(pk=job.pk, status="running", progress__gt=0).first(),
        timeout=timeout,
        interval=0.05,
        message=f"job {job.pk} never reported progress; it is {row(job).status}",
    )


def runs_on(job: Job, worker) -> bool:
    """Whether ``job`` was claimed by the worker process ``worker`` (host:pid:thread)."""
    return row(job).worker.startswith(f"{socket.gethostname()}:{worker.pid}:")


# --- processes -------------------------------------------------------------------------
def job_processes(worker) -> list[psutil.Process]:
    """The job processes the worker process started that still run."""
    return worker.job_processes()


def the_job_process(worker) -> psutil.Process:
    procs = wait_until(lambda: job_processes(worker), message="no job process under the worker")
    assert len(procs) == 1, procs
    return procs[0]


def gone(proc: psutil.Process) -> bool:
    """The process has exited (a zombie waiting for a reaper counts as exited)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# --- store and events ------------------------------------------------------------------
def keys(prefix: str) -> list[str]:
    return list(get_store().list(prefix))


def staging_root(job: Job) -> str:
    return f"_staging/jobs/{job.pk}/"


def stage_leftover(job: Job, attempt: int = 1) -> str:
    """Write a file where ``attempt`` of the job stages its output; return its key."""
    key = f"{staging_root(job)}attempt-{attempt}/partial.bin"
    get_store().put(key, b"half-written")
    return key


def seqs(job: Job) -> list[int]:
    return list(job.events.order_by("seq").values_list("seq", flat=True))


def assert_gap_free(job: Job) -> None:
    job = row(job)
    assert seqs(job) == list(range(1, job.last_seq + 1))


def statuses(job: Job) -> list[str]:
    """The statuses the job went through, from its status events."""
    return [
        d["status"]
        for d in job.events.filter(type="status").order_by("seq").values_list("data", flat=True)
    ]


def messages(job: Job, type_: str = "log") -> list[str]:
    return [
        d.get("message", "") for d in job.events.filter(type=type_).values_list("data", flat=True)
    ]


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
