"""Persisting job events and publishing them to websocket clients.

An event is ``{"type": ..., "data": {...}, "time": datetime}`` with type one of:

- ``status``:   ``{"status": "running", "text": "..."}``
- ``progress``: ``{"progress": 0.0..1.0, "eta_seconds": int | None, "text": str}``
- ``log``:      ``{"level": "info" | "warning" | "error", "message": str, "stream": str}``
- ``metric``:   ``{"series": str, "step": int, "value": float}``

Persisting gives each event the job's next sequence number; after the
transaction commits the events go to the channel group of the job, and a
summary of the job (status, progress) to the group of the job list.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.jobs.models import Job, JobEvent

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset({"status", "progress", "log", "metric"})
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
        transaction.on_commit(lambda: publish(job_id, payload, summary))
    return rows


def update(job_id: int, **job_fields: Any) -> None:
    """Change job fields without an event, still telling the job-list clients."""
    append(job_id, [], **job_fields)


# --- publishing -----------------------------------------------------------------

# Sends run on a long-lived event loop rather than a fresh ``async_to_sync`` loop
# per call, which would open a new Redis connection (and thread) for every batch.
# In the embedded default that loop is the web server's own: the in-memory
# channel layer only delivers within the loop its consumers run on.
_server_loop: asyncio.AbstractEventLoop | None = None
_publisher_loop: asyncio.AbstractEventLoop | None = None
_publisher_lock = threading.Lock()
SEND_TIMEOUT = 10


def bind_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _server_loop
    _server_loop = loop


def _target_loop() -> asyncio.AbstractEventLoop:
    global _publisher_loop
    if _server_loop is not None and _server_loop.is_running():
        return _server_loop
    with _publisher_lock:
        if _publisher_loop is None or not _publisher_loop.is_running():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-publisher", daemon=True).start()
            _publisher_loop = loop
    return _publisher_loop


def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _target_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:  # called from inside that loop: it cannot wait for itself
        loop.create_task(layer.group_send(group, message))
        return
    # Wait for the send: fired and forgotten, two sends of one thread could
    # overtake each other (a job list showing "queued" after "aborted").
    asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(
        timeout=SEND_TIMEOUT
    )


def publish(job_id: int, events: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Send events to the job's group and the summary to the job list (best effort).

    Losing a websocket message loses nothing: clients backfill from the REST API
    by sequence number.
    """
    summary = {**summary, "updated_at": timezone.now().isoformat()}
    try:
        if events:
            _send(job_group(job_id), {"type": "job.events", "job": job_id, "events": events})
        _send(JOB_LIST_GROUP, {"type": "job.summary", "job": summary})
    except Exception:  # the channel layer being down must not fail a job
        log.warning("could not publish events of job %s", job_id, exc_info=True)
