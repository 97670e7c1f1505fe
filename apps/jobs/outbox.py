"""Messages the broker did not take yet: a job is committed first, its message sent after.

``services.enqueue`` sends on commit; if the broker is away the job stays queued with
``sent_at`` NULL and the request still succeeds. ``send_pending`` sends those messages;
a ``Sender`` thread runs it every ``DIGITS_OUTBOX_INTERVAL`` seconds (backing off to
``DIGITS_OUTBOX_MAX_BACKOFF`` while the broker is down) in the reaper and, started on the
first failed send, in the process that failed. Duplicate messages are harmless: claiming
is conditional (``services.claim``).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from apps.jobs import dispatch
from apps.jobs.models import Job, JobStatus

log = logging.getLogger(__name__)

#: Counters since the process started (``apps.core.metrics``).
COUNTERS = {"publish_failures": 0, "published_late": 0}
_lock = threading.Lock()
_sender: Sender | None = None


def publish(job_id: int, queue: str, delay_ms: int | None = None) -> bool:
    """Send the job's message now (delivered ``delay_ms`` later when given); on success
    mark it sent. False (and logged) on failure."""
    try:
        dispatch.send(job_id, queue, delay_ms=delay_ms)
    except Exception as exc:  # any broker/connection error: the outbox retries
        with _lock:
            COUNTERS["publish_failures"] += 1
        log.warning("job %s: the broker did not take its message (%s); retrying", job_id, exc)
        return False
    Job.objects.filter(pk=job_id, sent_at__isnull=True).update(sent_at=timezone.now())
    return True


def publish_on_commit(job_id: int, queue: str, delay_ms: int | None = None) -> None:
    """What ``services.enqueue`` runs after commit: never raises, starts the retry loop."""
    try:
        if publish(job_id, queue, delay_ms):
            return
    except Exception:  # the database update failed: the outbox will resend
        log.exception("job %s: recording the send failed", job_id)
    start_sender()


def pending(now=None):
    """Queued jobs whose message was not sent, committed at least a moment ago (the
    sender must not race a request's own send on commit)."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.DIGITS_OUTBOX_GRACE_SECONDS)
    return Job.objects.filter(
        status=JobStatus.QUEUED, sent_at__isnull=True, enqueued_at__lt=now - grace
    ).order_by("enqueued_at", "pk")


def send_pending(now=None) -> tuple[int, int]:
    """Send the pending messages, oldest first; stop at the first failure. (sent, left)."""
    jobs = list(pending(now).values_list("pk", "queue")[:500])
    sent = 0
    for job_id, queue in jobs:
        if not publish(job_id, queue):
            break
        sent += 1
    if sent:
        with _lock:
            COUNTERS["published_late"] += sent
        log.info("outbox: sent %d message(s) the broker had not taken", sent)
    return sent, len(jobs) - sent


class Sender(threading.Thread):
    """Runs ``send_pending`` until stopped, or (``until_empty``) until nothing is left."""

    def __init__(self, until_empty: bool = False, stop: threading.Event | None = None):
        super().__init__(name="digits-outbox", daemon=True)
        self.until_empty = until_empty
        self.stop = stop or threading.Event()
        #: Set (under ``_lock``) when a send failed after this pass listed the pending
        #: jobs: the loop must not end on that pass's "nothing left".
        self.again = False
        self.done = False  # set with the decision to end, under the same lock

    def run(self) -> None:
        try:
            self._loop()
        finally:
            connection.close()  # this thread's own

    def _loop(self) -> None:
        interval = settings.DIGITS_OUTBOX_INTERVAL
        delay = interval
        while not self.stop.wait(delay):
            left = 1
            try:
                _, left = send_pending()
            except Exception:
                log.exception("outbox pass failed")
            finally:
                close_old_connections()
            if not left and self.until_empty and not self._more_to_do():
                return
            delay = min(delay * 2, settings.DIGITS_OUTBOX_MAX_BACKOFF) if left else interval

    def _more_to_do(self) -> bool:
        with _lock:
            again, self.again = self.again, False
            self.done = not again
        return again


def start_sender() -> None:
    """Start this process's retry loop unless it runs already (it ends when all are sent;
    a send that fails during its last pass keeps it going one pass more)."""
    global _sender
    with _lock:
        if _sender is not None and _sender.is_alive() and not _sender.done:
            _sender.again = True
            return
        _sender = Sender(until_empty=True)
        _sender.start()
