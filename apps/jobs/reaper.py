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
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from apps.cluster import scheduling
from apps.jobs import events, services, sweeper
from apps.jobs.models import Job, JobStatus

log = logging.getLogger(__name__)


def reap(now=None) -> dict[str, int]:
    now = now or timezone.now()
    counts = {"retried": 0, "failed": 0, "aborted": 0, "resent": 0}
    stale_before = now - timedelta(seconds=settings.DIGITS_JOB_STALE_SECONDS)
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
    scheduling.release_stale()  # the devices of the jobs just requeued, and any other lost

    resend_before = now - timedelta(seconds=settings.DIGITS_JOB_REQUEUE_SECONDS)
    with transaction.atomic():
        waiting = Job.objects.select_for_update(skip_locked=True).filter(
            status=JobStatus.QUEUED, enqueued_at__lt=resend_before
        )
        for job in waiting:
            events.update(job.pk, enqueued_at=now)
            services.enqueue(job)
            counts["resent"] += 1
    if any(counts.values()):
        log.info("reaper: %s", counts)
    return counts


def run_forever(interval: float | None = None, stop: threading.Event | None = None) -> None:
    """Reap every ``interval`` seconds until ``stop`` is set."""
    interval = interval or settings.DIGITS_REAPER_INTERVAL
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            reap()
            sweeper.sweep_if_due()  # orphaned staging and uploads, hourly by default
        except Exception:
            log.exception("reaper pass failed")
        finally:
            close_old_connections()
        stop.wait(interval)
