"""Reconciles jobs with reality; runs periodically (``manage.py reaper``).

- A running job whose heartbeat is older than ``DIGITS_JOB_STALE_SECONDS`` lost
  its worker: it is queued again if attempts remain, failed otherwise.
- A queued job enqueued longer ago than ``DIGITS_JOB_REQUEUE_SECONDS`` may have
  lost its message (broker restart, crash between commit and send): it is sent
  again. Duplicates are harmless because claiming is conditional.
- A GPU reservation whose job no longer runs under its worker is dropped
  (``apps.cluster.scheduling.release_stale``).
- Every ``DIGITS_SWEEP_INTERVAL`` seconds, orphaned staging and upload objects are
  deleted (``apps.jobs.sweeper``).
- Messages the broker did not take are sent by the outbox thread it runs
  (``apps.jobs.outbox``, every second or two); each pass beats (``apps.jobs.liveness``).
- After the reaper's own database outage, stale heartbeats are judged only once the
  workers had two heartbeats' time to write theirs again.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from apps.cluster import scheduling
from apps.core import idempotency
from apps.core.storage import stats as store_stats
from apps.jobs import events, liveness, outbox, services, sweeper
from apps.jobs.models import Beat, Job, JobStatus

log = logging.getLogger(__name__)


#: Jobs handed back since the process started, by outcome (``apps.core.metrics``).
COUNTERS = {"retried": 0, "failed": 0, "aborted": 0, "resent": 0}


def reap(now=None, judge_stale: bool = True) -> dict[str, int]:
    now = now or timezone.now()
    counts = {"retried": 0, "failed": 0, "aborted": 0, "resent": 0}
    stale_before = now - timedelta(seconds=settings.DIGITS_JOB_STALE_SECONDS)
    if not judge_stale:
        stale_before = now - timedelta(days=36500)
    with transaction.atomic():
        stale = Job.objects.select_for_update(skip_locked=True).filter(
            status=JobStatus.RUNNING, heartbeat_at__lt=stale_before
        )
        for job in stale:
            silent = int((now - job.heartbeat_at).total_seconds())
            reason = (
                f"Worker {job.worker or '?'} stopped responding ({silent} s without heartbeat)."
            )
            status = services.requeue_or_fail(job, reason)
            counts[{"queued": "retried", "error": "failed", "aborted": "aborted"}[status]] += 1
        # The devices of the jobs just requeued (and any other lost), in the same commit:
        # a retried job's message, sent on commit, wakes a worker that claims at once.
        scheduling.release_stale()

    resend_before = now - timedelta(seconds=settings.DIGITS_JOB_REQUEUE_SECONDS)
    with transaction.atomic():
        waiting = Job.objects.select_for_update(skip_locked=True).filter(
            status=JobStatus.QUEUED, enqueued_at__lt=resend_before
        )
        for job in waiting:
            events.update(job.pk, enqueued_at=now)
            services.enqueue(job)
            counts["resent"] += 1
    Beat.objects.filter(at__lt=now - timedelta(days=1)).delete()
    idempotency.purge()
    if any(counts.values()):
        log.info("reaper: %s", counts)
        for key, value in counts.items():
            COUNTERS[key] += value
    return counts


def run_forever(interval: float | None = None, stop: threading.Event | None = None) -> None:
    """Reap every ``interval`` seconds until ``stop`` is set."""
    interval = interval or settings.DIGITS_REAPER_INTERVAL
    stop = stop or threading.Event()
    sender = outbox.Sender(stop=stop)
    sender.start()
    settle = 2 * settings.DIGITS_JOB_HEARTBEAT_SECONDS + 1
    healthy_since = None  # monotonic time of the first good pass after a failure
    while not stop.is_set():
        started = time.monotonic()
        try:
            reap(judge_stale=healthy_since is not None and started - healthy_since >= settle)
            healthy_since = started if healthy_since is None else healthy_since
            sweeper.sweep_if_due()  # orphaned staging and uploads, hourly by default
        except Exception:
            healthy_since = None
            log.exception("reaper pass failed")
        finally:
            close_old_connections()
        # The loop is alive, even while the database is not.
        liveness.beat("reaper", {**COUNTERS, **outbox.COUNTERS, **store_stats.prefixed()})
        close_old_connections()  # back to the pool, not held through the wait
        stop.wait(interval)
    sender.join(timeout=10)
    connection.close()  # this thread's own (the embedded reaper runs in a thread)
