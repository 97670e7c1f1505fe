"""Quotas, checked once for every job submitted (``apps.jobs.services.submit``).

Every write path that creates a job — the job API and page, new datasets and models
(page and API), sweeps, resumes, clones, evaluations — ends in ``submit``, which calls
``check_submission`` inside its transaction, before the job row exists. Over a resource
quota: ``QuotaExceeded`` (HTTP 429, what was exceeded, the limit, the use, when it frees
up); a parameter over its limit: ``ParameterLimitExceeded`` (HTTP 400 naming the field).
See docs/decisions/0017-quotas-and-accounting.md.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.utils import timezone
from rest_framework.exceptions import APIException, ValidationError

from apps.accounts.models import Team
from apps.jobs.models import ACTIVE_STATUSES, Job, JobArtifact, JobStatus
from apps.usage.models import PARAMETER_FIELDS, RESOURCE_FIELDS, JobUsage, Quota, StoredObject

#: Where each parameter limit applies: (path in the job's params, limit).
PARAMETER_PATHS = (
    (("processes",), "max_processes"),
    (("steps",), "max_steps"),
    (("solver", "epochs"), "max_epochs"),
    (("options", "width"), "max_image_side"),
    (("options", "height"), "max_image_side"),
)
QUOTA_NAMES = {
    "concurrent_jobs": "concurrent jobs",
    "concurrent_gpus": "concurrent GPUs",
    "gpu_hours_per_month": "GPU-hours this month",
    "storage_bytes": "storage",
}


class QuotaExceeded(APIException):
    """A submission over a resource quota: 429, with ``Retry-After`` when it is known."""

    status_code = 429
    default_code = "quota_exceeded"

    def __init__(self, message: str, payload: dict[str, Any], wait: int | None):
        super().__init__(message)
        self.message = message
        self.detail = {"detail": message, **payload}  # numbers stay numbers in the JSON
        self.wait = wait  # DRF answers it as Retry-After


class ParameterLimitExceeded(ValidationError):
    """A job parameter over its limit: 400 naming the field (``field`` is its dotted path)."""

    def __init__(self, path: tuple[str, ...], message: str):
        detail: Any = [message]
        for part in reversed(path):
            detail = {part: detail}
        super().__init__(detail)
        self.field = ".".join(path)
        self.message = message


def _defaults(scope: str) -> dict[str, Any]:
    return settings.DIGITS_QUOTA_TEAM if scope == "team" else settings.DIGITS_QUOTA


def limits_for(user=None, team=None) -> dict[str, Any]:
    """The limits of ``user`` (or ``team``): the admin's override, else the default."""
    scope = "team" if team is not None else "user"
    quota = Quota.objects.filter(**{scope: team if team is not None else user}).first()
    defaults = _defaults(scope)
    limits = {}
    for name in RESOURCE_FIELDS + PARAMETER_FIELDS:
        value = getattr(quota, name, None) if quota else None
        limits[name] = value if value is not None else defaults.get(name)
    return limits


def requested_gpus(params: dict[str, Any], queue: str) -> int:
    """GPUs a job asks for: its ``gpus`` parameter (training), else one on the GPU queue."""
    gpus = params.get("gpus")
    if isinstance(gpus, dict):
        mode = gpus.get("mode", "next")
        if mode == "none":
            return 0
        if mode == "specific":
            return len(gpus.get("ids") or []) or 1
        if mode == "count":
            return int(gpus.get("count") or 1)
        return 1
    return 1 if queue == "gpu" else 0


def _param(params: dict[str, Any], path: tuple[str, ...]):
    value: Any = params
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def check_parameters(params: dict[str, Any], limits: list[tuple[str, dict]]) -> None:
    """``ParameterLimitExceeded`` for the first parameter over the smallest of ``limits``."""
    for path, name in PARAMETER_PATHS:
        value = _param(params, path)
        if value is None:
            continue
        for scope, scope_limits in limits:
            limit = scope_limits.get(name)
            if limit is not None and value > limit:
                raise ParameterLimitExceeded(
                    path,
                    f"{path[-1]} may be at most {limit} ({scope} limit); this job asks for "
                    f"{value}.",
                )


def check_submission(*, owner, team, params: dict[str, Any], queue: str) -> None:
    """Refuse a job over ``owner``'s or ``team``'s limits; call inside the submitting
    transaction. The owner's (and team's) row is locked until it commits, so two
    submissions at once cannot both take the last slot."""
    scopes = [("user", owner, limits_for(user=owner))]
    get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
    if team is not None:
        Team.objects.select_for_update().filter(pk=team.pk).first()
        scopes.append((f"team {team.slug}", team, limits_for(team=team)))
    check_parameters(params, [(scope, limits) for scope, _, limits in scopes])
    gpus = requested_gpus(params, queue)
    for scope, holder, limits in scopes:
        of = {"team": holder} if scope != "user" else {"owner": holder}
        jobs = Job.objects.filter(**of)
        _check_concurrent(scope, jobs, limits, gpus)
        if gpus:
            _check_gpu_hours(scope, of, limits)
        _check_storage(scope, of, limits)


def _refuse(scope: str, quota: str, limit, used, message: str, frees_at: datetime | None):
    wait = None
    if frees_at is not None:
        wait = max(1, math.ceil((frees_at - timezone.now()).total_seconds()))
    payload = {
        "quota": quota, "scope": scope, "limit": limit, "used": used,
        "frees_at": frees_at.isoformat() if frees_at else None, "retry_after": wait,
    }  # fmt: skip
    when = f" It frees up around {frees_at:%Y-%m-%d %H:%M} UTC." if frees_at else ""
    raise QuotaExceeded(
        f"Over the {scope} quota of {QUOTA_NAMES[quota]}: {message}.{when}", payload, wait
    )


def _soonest_end(active: list[Job]) -> datetime | None:
    """When the first active job is expected to end (its ETA), if any job has one."""
    now = timezone.now()
    ends = [now + timedelta(seconds=j.eta_seconds) for j in active if j.eta_seconds is not None]
    return min(ends, default=None)


def _check_concurrent(scope: str, jobs, limits: dict, gpus: int) -> None:
    active = list(jobs.filter(status__in=ACTIVE_STATUSES).only("params", "queue", "eta_seconds"))
    limit = limits["concurrent_jobs"]
    if limit is not None and len(active) + 1 > limit:
        _refuse(
            scope, "concurrent_jobs", limit, len(active),
            f"{len(active)} of {limit} jobs are queued or running; wait for one to end or "
            "abort one", _soonest_end(active),
        )  # fmt: skip
    limit = limits["concurrent_gpus"]
    held = sum(requested_gpus(j.params, j.queue) for j in active)
    if gpus and limit is not None and held + gpus > limit:
        _refuse(
            scope, "concurrent_gpus", limit, held,
            f"the active jobs hold {held} of {limit} GPUs and this job asks for {gpus}",
            _soonest_end([j for j in active if requested_gpus(j.params, j.queue)]),
        )  # fmt: skip


def month_start(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now(), timezone.get_fixed_timezone(0))
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime | None = None) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


def gpu_seconds_this_month(of: dict[str, Any]) -> float:
    """GPU-seconds of the jobs ``of`` (``{"owner": user}`` or ``{"team": team}``) recorded
    this month, deleted jobs included, plus those of the jobs running now (so far)."""
    start, now = month_start(), timezone.now()
    recorded = JobUsage.objects.filter(**of, started_at__gte=start).aggregate(
        total=Sum("gpu_seconds")
    )["total"]
    running = Job.objects.filter(**of, status=JobStatus.RUNNING, started_at__isnull=False)
    live = sum(
        requested_gpus(j.params, j.queue) * (now - max(j.started_at, start)).total_seconds()
        for j in running.only("params", "queue", "started_at")
    )
    return (recorded or 0.0) + live


def _check_gpu_hours(scope: str, of: dict[str, Any], limits: dict) -> None:
    limit = limits["gpu_hours_per_month"]
    if limit is None:
        return
    used = round(gpu_seconds_this_month(of) / 3600, 4)
    if used >= limit:
        _refuse(
            scope, "gpu_hours_per_month", limit, used,
            f"{used:g} of {limit:g} GPU-hours used this month", next_month_start(),
        )  # fmt: skip


def storage_used(of: dict[str, Any]) -> int:
    """Bytes the store holds for ``of`` (``{"owner": user}`` or ``{"team": team}``): the
    published artifacts of its jobs and the objects its jobs published while running (model
    snapshots, which belong to their model and outlive the job that wrote them)."""
    artifacts = JobArtifact.objects.filter(**{f"job__{k}": v for k, v in of.items()})
    used = artifacts.aggregate(total=Sum("size"))["total"] or 0
    return used + (StoredObject.objects.filter(**of).aggregate(total=Sum("size"))["total"] or 0)


def _check_storage(scope: str, of: dict[str, Any], limits: dict) -> None:
    limit = limits["storage_bytes"]
    if limit is None:
        return
    used = storage_used(of)
    if used >= limit:
        _refuse(
            scope, "storage_bytes", limit, used,
            f"the artifacts and snapshots take {used} of {limit} bytes; delete jobs, "
            "datasets or models to free space", None,
        )  # fmt: skip
