"""``/metrics``: what an operator alerts on, in the Prometheus text format (docs/deploy.md).

Cluster-wide figures come from the database (queues, heartbeats, the reaper's and the
workers' beats and counters); ``*_total`` counters without a ``process`` label are this
web process's own. Staff sessions may read it, or anyone sending
``Authorization: Bearer <DIGITS_METRICS_TOKEN>`` (for the scraper).
"""

from __future__ import annotations

import hmac
import math
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Max, Min, Q
from django.http import HttpResponse
from django.utils import timezone

from apps.core.storage import stats
from apps.jobs import outbox
from apps.jobs.kinds import QUEUES
from apps.jobs.models import Beat, Job, JobStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Writer:
    def __init__(self):
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str, samples) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            label = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            self.lines.append(
                f"{name}{{{label}}} {_number(value)}" if label else f"{name} {_number(value)}"
            )

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _number(value) -> str:
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "+Inf"
    return f"{float(value):.3f}".rstrip("0").rstrip(".")


def _queues(out: Writer, now) -> None:
    rows = {
        row["queue"]: row
        for row in Job.objects.filter(status=JobStatus.QUEUED)
        .values("queue")
        .annotate(n=Count("id"), oldest=Min("enqueued_at"), unsent=Count("id", Q(sent_at=None)))
    }
    names = sorted(set(QUEUES) | set(rows))
    row = lambda q: rows.get(q, {"n": 0, "oldest": None, "unsent": 0})  # noqa: E731
    out.metric("digits_jobs_queued", "gauge", "Jobs waiting for a worker.",
               [({"queue": q}, row(q)["n"]) for q in names])  # fmt: skip
    out.metric(
        "digits_jobs_oldest_queued_age_seconds", "gauge",
        "Age of the oldest queued job (0 when none).",
        [({"queue": q}, (now - row(q)["oldest"]).total_seconds() if row(q)["oldest"] else 0)
         for q in names],
    )  # fmt: skip
    out.metric("digits_jobs_unsent", "gauge",
               "Queued jobs whose message the broker has not taken (the outbox retries).",
               [({"queue": q}, row(q)["unsent"]) for q in names])  # fmt: skip


def _running(out: Writer, now) -> None:
    stale_before = now - timedelta(seconds=settings.DIGITS_JOB_STALE_SECONDS)
    running = Job.objects.filter(status=JobStatus.RUNNING).aggregate(
        n=Count("id"), stale=Count("id", Q(heartbeat_at__lt=stale_before)),
        oldest=Min("heartbeat_at"),
    )  # fmt: skip
    out.metric("digits_jobs_running", "gauge", "Jobs a worker runs.", [({}, running["n"])])
    out.metric("digits_jobs_stale_heartbeats", "gauge",
               "Running jobs whose heartbeat is older than DIGITS_JOB_STALE_SECONDS.",
               [({}, running["stale"])])  # fmt: skip
    oldest = running["oldest"]
    out.metric("digits_jobs_heartbeat_max_age_seconds", "gauge",
               "Age of the oldest heartbeat of a running job (0 when none).",
               [({}, (now - oldest).total_seconds() if oldest else 0)])  # fmt: skip


def _beats(out: Writer, now) -> None:
    recent = Beat.objects.filter(at__gte=now - timedelta(hours=1))
    last = recent.filter(role="reaper").aggregate(at=Max("at"))["at"]
    out.metric("digits_reaper_last_pass_age_seconds", "gauge",
               "Seconds since a reaper's last pass (+Inf: none in the last hour).",
               [({}, (now - last).total_seconds() if last else None)])  # fmt: skip
    workers = list(recent.filter(role="worker"))
    out.metric("digits_worker_last_beat_age_seconds", "gauge",
               "Seconds since each worker process (seen in the last hour) last beat.",
               [({"process": b.name}, (now - b.at).total_seconds()) for b in workers])  # fmt: skip
    reapers = list(recent.filter(role="reaper"))
    out.metric("digits_reaper_jobs_handed_back_total", "counter",
               "Jobs the reaper took from a lost worker, by what became of them.",
               [({"process": b.name, "outcome": k}, b.counters.get(k, 0))
                for b in reapers for k in ("retried", "failed", "aborted")])  # fmt: skip
    out.metric("digits_reaper_resent_total", "counter",
               "Queued jobs the reaper sent again after DIGITS_JOB_REQUEUE_SECONDS.",
               [({"process": b.name}, b.counters.get("resent", 0)) for b in reapers])  # fmt: skip
    senders = reapers + workers
    out.metric("digits_publish_failures_total", "counter",
               "Job messages the broker refused (sent later by the outbox).",
               [({}, outbox.COUNTERS["publish_failures"])]
               + [({"process": b.name}, b.counters.get("publish_failures", 0)) for b in senders])  # fmt: skip
    out.metric("digits_outbox_sent_total", "counter",
               "Job messages the outbox sent after the broker had refused them.",
               [({}, outbox.COUNTERS["published_late"])]
               + [({"process": b.name}, b.counters.get("published_late", 0)) for b in senders])  # fmt: skip


def _store(out: Writer, beats) -> None:
    """The object store's retry counters: this process's and those the workers and the
    reaper report with their beats (``apps.core.storage.stats``)."""
    here = stats.snapshot()
    for name, help_text in (
        ("retries", "Object-store calls tried again after a transient error."),
        ("failures", "Object-store calls that gave up: the store stayed unreachable."),
    ):
        out.metric(f"digits_store_{name}_total", "counter", help_text,
                   [({}, here[name])]
                   + [({"process": b.name}, b.counters.get(f"store_{name}", 0)) for b in beats])  # fmt: skip


def render() -> str:
    now = timezone.now()
    out = Writer()
    _queues(out, now)
    _running(out, now)
    _beats(out, now)
    _store(out, Beat.objects.filter(at__gte=now - timedelta(hours=1)))
    return out.text()


def allowed(request) -> bool:
    token = settings.DIGITS_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_staff)


def view(request):
    if not allowed(request):
        return HttpResponse(
            "Staff or Authorization: Bearer <DIGITS_METRICS_TOKEN> only.\n",
            status=403, content_type="text/plain",
        )  # fmt: skip
    return HttpResponse(render(), content_type=CONTENT_TYPE)
