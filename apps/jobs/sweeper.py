"""Removes what crashed builds and uploads left in the artifact store (run by the reaper).

Work in progress that nothing will ever publish or delete:

- ``_staging/jobs/<id>/attempt-<n>/...`` of a job that is not running attempt ``n`` (it
  ended, was queued again or deleted, and the discard after it failed or never ran);
- any other ``_staging/`` key (a temp file of a crashed write);
- ``uploads/...`` that no job uses any more: named by no job, or only by dataset builds
  that have ended (their uploads are deleted when they end; this catches a failed delete
  or an upload whose submission failed);
- what a deleted row published: ``jobs/<id>/`` of a job that no longer exists, and the
  areas other apps register the same way (``register_area``: a model's snapshots under
  ``models/<id>/``). A delete removes its objects after its transaction commits; when the
  store fails then, they would stay forever, counted by nobody.

Only objects older than ``DIGITS_ORPHAN_GRACE_SECONDS`` go, so a write or an upload in
progress (an upload is stored before its job row exists) is never taken.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.dispatch import Signal
from django.utils import timezone

from apps.core.storage import STAGING_PREFIX, ArtifactNotFound, get_store
from apps.core.uploads import PREFIX as UPLOADS_PREFIX
from apps.core.uploads import delete_upload
from apps.jobs.models import FINAL_STATUSES, Job, JobStatus

log = logging.getLogger(__name__)

_JOB_STAGING = re.compile(r"^_staging/jobs/(?P<job>[0-9]+)/attempt-(?P<attempt>[0-9]+)/")
_last_sweep = 0.0
_lock = threading.Lock()

#: Sent after the sweep deleted an area's ``prefix`` (``<prefix><id>/``) whose row was gone:
#: what accounts for those objects (the usage ledger) forgets them.
area_swept = Signal()

#: Areas of published objects owned by a row: name → (prefix of ``<prefix><id>/...``
#: keys, a function giving which of the ids still exist).
_AREAS: dict[str, tuple[str, Callable[[set[int]], Iterable[int]]]] = {}


def register_area(name: str, prefix: str, existing: Callable[[set[int]], Iterable[int]]) -> None:
    """Sweep ``<prefix><id>/...`` whose owner is gone: ``existing(ids)`` names the ids
    whose row still exists (an app's ``ready()`` registers its own area)."""
    _AREAS[name] = (prefix, existing)


def _existing_jobs(ids: set[int]) -> Iterable[int]:
    return Job.objects.filter(pk__in=ids).values_list("pk", flat=True)


register_area("jobs", "jobs/", _existing_jobs)


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Delete orphaned staging and upload objects older than the grace; counts by area."""
    now = now or timezone.now()
    before = now - timedelta(seconds=settings.DIGITS_ORPHAN_GRACE_SECONDS)
    store = get_store()
    counts = {"staging": 0, "uploads": 0, **dict.fromkeys(_AREAS, 0)}
    running = dict(Job.objects.filter(status=JobStatus.RUNNING).values_list("pk", "attempts"))
    for key in store.list(STAGING_PREFIX):
        match = _JOB_STAGING.match(key)
        if match and running.get(int(match["job"])) == int(match["attempt"]):
            continue  # the attempt that runs now writes there
        if _older(store, key, before):
            store.delete(key)
            counts["staging"] += 1
    for key in store.list(UPLOADS_PREFIX):
        if _older(store, key, before) and not _upload_in_use(key):
            delete_upload(key)
            counts["uploads"] += 1
    for name, (prefix, existing) in _AREAS.items():
        counts[name] = _sweep_area(store, prefix, existing, before)
    if any(counts.values()):
        log.info("sweeper: deleted orphans %s", counts)
    return counts


def _sweep_area(store, prefix: str, existing, before: datetime) -> int:
    """Delete ``<prefix><id>/`` of the ids whose row is gone, once its objects are older
    than the grace (its first key stands for them: they were published together)."""
    first: dict[int, str] = {}
    for key in store.list(prefix):
        head = key[len(prefix) :].split("/", 1)[0]
        if head.isdigit():
            first.setdefault(int(head), key)
    ids, gone = sorted(first), set()
    for at in range(0, len(ids), 5000):  # a bounded IN (...) per query
        chunk = set(ids[at : at + 5000])
        gone |= chunk - set(existing(chunk))
    deleted = 0
    for owner in sorted(gone):
        if _older(store, first[owner], before):
            deleted += store.delete_prefix(f"{prefix}{owner}/")
            area_swept.send(sweep, prefix=f"{prefix}{owner}/")
    return deleted


def sweep_if_due(interval: float | None = None) -> dict[str, int] | None:
    """``sweep()`` at most every ``DIGITS_SWEEP_INTERVAL`` seconds (the reaper's loop)."""
    global _last_sweep
    interval = settings.DIGITS_SWEEP_INTERVAL if interval is None else interval
    with _lock:
        if _last_sweep and time.monotonic() - _last_sweep < interval:
            return None
        _last_sweep = time.monotonic()
    return sweep()


def _older(store, key: str, before: datetime) -> bool:
    try:
        return store.modified(key) < before
    except ArtifactNotFound:
        return False  # gone meanwhile


def _upload_in_use(key: str) -> bool:
    """Whether a job names ``key`` and still needs it (anything but an ended build)."""
    spelled = Q(text__contains=key) | Q(text__contains=json.dumps(key)[1:-1])  # \u escapes
    naming = Job.objects.annotate(text=Cast("params", TextField())).filter(spelled)
    return naming.exclude(kind="dataset.build", status__in=FINAL_STATUSES).exists()
