"""Persisting job events and publishing them to websocket clients.

An event is ``{"type": ..., "data": {...}, "time": datetime}`` with type one of:

- ``status``:   ``{"status": "running", "text": "..."}``
- ``progress``: ``{"progress": 0.0..1.0, "eta_seconds": int | None, "text": str}``
- ``log``:      ``{"level": "info" | "warning" | "error", "message": str, "stream": str}``
- ``metric``:   ``{"series": str, "step": int, "value": float}``
- ``epoch``:    ``{"epoch": int, "step": int, "row": {column: value, "snapshot": bool}}``, a
  finished epoch's figures (the model page's epochs table grows with them; a run that
  stops early keeps them)

Persisting gives each event the job's next sequence number; after the
transaction commits the events go to the sockets of the job, and a summary of
the job (status, progress) to the job lists (``apps.jobs.fanout``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.jobs import fanout
from apps.jobs.models import Job, JobEvent

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset({"status", "progress", "log", "metric", "epoch"})
LIST_EVENT_TYPES = frozenset({"status", "progress"})  # the others leave the job list as it was
JOB_LIST_GROUP = "jobs"
SUMMARY_FIELDS = (
    "id", "name", "kind", "status", "progress", "eta_seconds", "status_text",
    "attempts", "error", "owner_id", "team_id", "visibility", "last_seq",
)  # fmt: skip


def job_group(job_id: int) -> str:
    return f"job.{job_id}"


def event(type_: str, **data: Any) -> dict[str, Any]:
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    return {"type": type_, "data": data, "time": timezone.now()}


def serialize(ev: JobEvent) -> dict[str, Any]:
    return {"seq": ev.seq, "type": ev.type, "time": ev.created_at.isoformat(), "data": ev.data}


def append(job_id: int, events: Iterable[dict[str, Any]], **job_fields: Any) -> list[JobEvent]:
    """Store ``events`` with the job's next sequence numbers and update ``job_fields``.

    Runs in one transaction; the update of ``Job.last_seq`` locks the job row, so
    concurrent writers (runner, reaper, abort) get distinct, gap-free numbers.
    """
    events = list(events)
    with transaction.atomic():
        updated = Job.objects.filter(pk=job_id).update(
            last_seq=F("last_seq") + len(events), **job_fields
        )
        if not updated:
            return []
        summary = Job.objects.values(*SUMMARY_FIELDS).get(pk=job_id)
        first = summary["last_seq"] - len(events) + 1
        rows = JobEvent.objects.bulk_create(
            JobEvent(
                job_id=job_id,
                seq=first + i,
                type=ev["type"],
                data=ev["data"],
                created_at=ev["time"],
            )  # fmt: skip
            for i, ev in enumerate(events)
        )
        payload = [serialize(row) for row in rows]
        access = bool(SHARING_FIELDS & job_fields.keys())
        # The job lists show fields, status and progress: a batch of logs or
        # metrics alone changes nothing there, and every tab would receive it.
        if not job_fields and not any(ev["type"] in LIST_EVENT_TYPES for ev in events):
            summary = None
        transaction.on_commit(lambda: publish(job_id, payload, summary, access))
    return rows


def update(job_id: int, **job_fields: Any) -> None:
    """Change job fields without an event, still telling the job-list clients."""
    append(job_id, [], **job_fields)


# --- publishing -----------------------------------------------------------------
SHARING_FIELDS = frozenset({"team", "team_id", "visibility", "owner", "owner_id"})


def publish(
    job_id: int,
    events: list[dict[str, Any]],
    summary: dict[str, Any] | None,
    access: bool = False,
) -> None:
    """Send events to the job's sockets and the summary to the job lists (best effort).

    One publish per group (``apps.jobs.fanout``), whatever the number of viewers.
    Losing a websocket message loses nothing: clients backfill from the REST API
    by sequence number. ``access``: the job's sharing changed, so its viewers'
    sockets check again whether they may still see it.
    """
    try:
        if events:
            fanout.publish(job_group(job_id), {"type": "events", "job": job_id, "events": events})
        if summary is not None:
            summary = {**summary, "updated_at": timezone.now().isoformat()}
            fanout.publish(JOB_LIST_GROUP, {"type": "job", "job": summary})
        if access:
            fanout.publish(fanout.ACCESS_GROUP, {"type": "access", "job": job_id})
    except Exception:  # the channel layer being down must not fail a job
        log.warning("could not publish events of job %s", job_id, exc_info=True)


def access_changed(user_ids: Iterable[int] | None) -> None:
    """Tell every web process that these users' team roles changed (None: anyone's)."""
    users = None if user_ids is None else sorted(set(user_ids))
    try:
        fanout.publish(fanout.ACCESS_GROUP, {"type": "access", "users": users})
    except Exception:
        log.warning("could not publish an access change", exc_info=True)
