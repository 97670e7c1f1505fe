"""Signs of life of the background processes, for probes and metrics.

The reaper beats after each pass, a worker while its consumer and worker threads are
alive (``WorkerBeat``). A beat touches a file under ``DIGITS_LIVENESS_DIR`` (what the
Kubernetes exec probe ``manage.py alive <role>`` reads: no database needed, so a
database outage does not restart the pod) and, best effort, a ``Beat`` row (metrics).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from apps.core.storage import stats as store_stats
from apps.jobs import outbox

log = logging.getLogger(__name__)

ROLES = ("reaper", "worker")


def _file(role: str) -> Path:
    return Path(settings.DIGITS_LIVENESS_DIR) / role


def beat(role: str, counters: dict | None = None) -> None:
    """Record that this process of ``role`` is alive now (with its ``counters``)."""
    path = _file(role)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path)
    from apps.jobs.models import Beat

    name = f"{role}@{socket.gethostname()}:{os.getpid()}"
    try:
        Beat.objects.update_or_create(
            name=name, defaults={"role": role, "at": timezone.now(), "counters": counters or {}}
        )
    except DatabaseError as exc:  # the file is what the probe reads; the row is a bonus
        log.debug("beat %s: no database (%s)", name, exc)
        close_old_connections()


def age(role: str) -> float | None:
    """Seconds since this node's last beat of ``role``; None if there was none."""
    try:
        return max(0.0, time.time() - _file(role).stat().st_mtime)
    except FileNotFoundError:
        return None


class WorkerBeat(threading.Thread):
    """Beats every ``interval`` seconds while all of the dramatiq worker's consumer and
    worker threads are alive: a worker whose threads died stops beating and its liveness
    probe fails, although the process and its broker connection may still be up."""

    def __init__(self, worker, interval: float, stop: threading.Event):
        super().__init__(name="digits-worker-beat", daemon=True)
        self.worker, self.interval, self.stop = worker, interval, stop

    def healthy(self) -> bool:
        consumers = list(getattr(self.worker, "consumers", {}).values())
        workers = list(getattr(self.worker, "workers", []))
        return bool(consumers) and all(t.is_alive() for t in consumers + workers)

    def run(self) -> None:
        while not self.stop.is_set():
            if self.healthy():
                beat("worker", {**outbox.COUNTERS, **store_stats.prefixed()})
                close_old_connections()  # back to the pool, not held through the wait
            else:
                log.error("worker threads died: not beating (the liveness probe will fail)")
            self.stop.wait(self.interval)
