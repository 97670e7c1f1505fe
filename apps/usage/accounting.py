"""Usage accounting: what each job used, and the reports built from it.

Written by the runner once a job process ends (``apps.usage.process.record``) and when a
job's artifacts are published (``bytes_written``: ``apps.usage.signals`` for the artifacts
published with the job, ``record_published`` for what it published while running, its
snapshots); read by the usage page and API. The storage ledger (``StoredObject``, ADR 0020)
is kept here too: what jobs published while running and the uploads users stored.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, Max, Sum
from django.db.models.functions import Greatest, TruncMonth

from apps.accounts.models import Team
from apps.jobs.models import Job, JobArtifact
from apps.usage.models import JobUsage, StoredObject
from apps.usage.quotas import requested_gpus

GROUPS = ("month", "model", "kind", "owner", "team")
FIGURES = (
    "jobs", "wall_seconds", "gpu_seconds", "cpu_seconds", "peak_memory_bytes", "bytes_written",
)  # fmt: skip


def usage_of(job: Job) -> JobUsage:
    """The job's usage row, created with who and what it is for on first use."""
    model_id = job.params.get("model_id") if job.kind == "model.train" else None
    usage, _ = JobUsage.objects.get_or_create(
        job=job,
        defaults={
            "job_number": job.pk, "owner_id": job.owner_id, "team_id": job.team_id,
            "kind": job.kind, "model_id": model_id if isinstance(model_id, int) else None,
            "model_name": job.name[:200] if model_id else "",
            "gpus": requested_gpus(job.params, job.queue), "started_at": job.started_at,
        },
    )  # fmt: skip
    return usage


def add_run(job: Job, *, seconds: float, cpu_seconds: float, peak_memory_bytes: int) -> None:
    """Add one attempt's run (its process's wall time, CPU time and peak memory)."""
    usage = usage_of(job)
    JobUsage.objects.filter(pk=usage.pk).update(
        attempts=F("attempts") + 1,
        wall_seconds=F("wall_seconds") + seconds,
        gpu_seconds=F("gpu_seconds") + usage.gpus * seconds,
        cpu_seconds=F("cpu_seconds") + cpu_seconds,
        peak_memory_bytes=Greatest(F("peak_memory_bytes"), peak_memory_bytes),
    )


def count_artifacts(job: Job) -> None:
    """``bytes_written``: the size of the job's published artifacts, with the objects it
    published while running (its snapshots)."""
    artifacts = JobArtifact.objects.filter(job=job).aggregate(total=Sum("size"))["total"]
    published = StoredObject.objects.filter(job=job).aggregate(total=Sum("size"))["total"]
    total = (artifacts or 0) + (published or 0)
    JobUsage.objects.filter(pk=usage_of(job).pk).update(bytes_written=total)


def record_published(job: Job, key: str, size: int) -> None:
    """``job`` published ``key`` (``size`` bytes) while running, outside its own artifacts:
    it takes its owner's (and team's) storage until ``forget_stored`` (the object deleted).

    Publishing a key again (a retried attempt saving the same epoch) replaces the record.
    """
    # The row's sharing as it is now: the runner's copy of the job predates any change.
    owner_id, team_id = Job.objects.filter(pk=job.pk).values_list(
        "owner_id", "team_id"
    ).first() or (job.owner_id, job.team_id)
    StoredObject.objects.update_or_create(
        key=key, defaults={"size": size, "owner_id": owner_id, "team_id": team_id, "job": job}
    )
    count_artifacts(job)


def record_upload(key: str, size: int, owner) -> None:
    """``owner`` stored the upload ``key``: it takes their storage until it is deleted
    (no job wrote it, no team shares it)."""
    StoredObject.objects.update_or_create(
        key=key, defaults={"size": size, "owner": owner, "team": None, "job": None}
    )


def record_existing(key: str, size: int, *, owner_id: int, team_id: int | None = None) -> bool:
    """Record an object stored before the ledger existed (``manage.py record_storage``);
    one already recorded is kept as it is. Whether it was new."""
    _, created = StoredObject.objects.get_or_create(
        key=key, defaults={"size": size, "owner_id": owner_id, "team_id": team_id}
    )
    return created


def forget_object(key: str) -> None:
    """The object ``key`` was deleted: it no longer takes storage."""
    StoredObject.objects.filter(key=key).delete()


def forget_stored(prefix: str) -> None:
    """The objects below ``prefix`` are being deleted: they no longer take storage.

    Call in the transaction that deletes what holds them (a model), so the quota frees
    up with it; the job's ``bytes_written`` keeps them (it is what the job wrote)."""
    StoredObject.objects.filter(key__startswith=prefix).delete()


def share_stored(prefix: str, team) -> None:
    """The objects below ``prefix`` now count for ``team``'s storage (or no team's)."""
    StoredObject.objects.filter(key__startswith=prefix).update(team=team)


def report(rows, group: str) -> list[dict[str, Any]]:
    """Totals of ``rows`` per month, model, kind, owner or team (``GROUPS``)."""
    names, expressions, extra = {
        "month": ((), {"month": TruncMonth("started_at")}, {}),
        "model": (("model_id",), {}, {"model": Max("model_name")}),
        "kind": (("kind",), {}, {}),
        "owner": ((), {"owner_name": F("owner__username")}, {}),
        "team": ((), {"team_slug": F("team__slug")}, {}),
    }[group]
    out = (
        rows.values(*names, **expressions)
        .annotate(
            **extra,
            jobs=Count("id"),
            wall_seconds=Sum("wall_seconds"),
            gpu_seconds=Sum("gpu_seconds"),
            cpu_seconds=Sum("cpu_seconds"),
            peak_memory_bytes=Max("peak_memory_bytes"),
            bytes_written=Sum("bytes_written"),
        )
        .order_by(*names, *expressions)
    )
    return [_row(group, r) for r in out]


def _row(group: str, row: dict[str, Any]) -> dict[str, Any]:
    if group == "month":
        row["month"] = row["month"].strftime("%Y-%m") if row["month"] else ""
    for name in ("wall_seconds", "gpu_seconds", "cpu_seconds"):
        row[name] = round(row[name] or 0.0, 3)
    return row


class NotVisible(Exception):
    """The caller may not see the usage asked for (pages and API answer 404)."""


def scoped_usage(viewer, *, username: str = "", team_slug: str = ""):
    """``(rows, scope)``: the usage of ``username`` or ``team_slug`` (or the viewer's own;
    everybody's for staff) as ``viewer`` may see it; ``NotVisible`` otherwise.

    Staff see every user's and team's usage; others their own and their teams'.
    """
    rows = JobUsage.objects.select_related("owner", "team")
    if team_slug:
        team = Team.objects.filter(slug=team_slug).first()
        if team is None or not (viewer.is_staff or team.memberships.filter(user=viewer).exists()):
            raise NotVisible(team_slug)
        return rows.filter(team=team), f"team {team.slug}"
    if username:
        if not (viewer.is_staff or username == viewer.get_username()):
            raise NotVisible(username)
        return rows.filter(owner__username=username), f"user {username}"
    if viewer.is_staff:
        return rows, "everybody"
    return rows.filter(owner=viewer), f"user {viewer.get_username()}"
