"""Job lifecycle: submit, claim, finish, abort, retry, clone, delete.

Every state change goes through here; views, the API, the runner and the
reaper only call these functions.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from apps.cluster.models import Reservation
from apps.core import permissions
from apps.core.models import Visibility
from apps.core.storage import get_store
from apps.jobs import events, outbox
from apps.jobs.kinds import domain_rules, get_kind, hooks_for
from apps.jobs.models import FINAL_STATUSES, Job, JobArtifact, JobPriority, JobStatus
from apps.usage import quotas

log = logging.getLogger(__name__)


class JobStateError(Exception):
    """The job is not in a state that allows the operation (409)."""


class CloneRefused(Exception):
    """The caller may see the job but may not create what cloning it creates (400)."""


def enqueue(job: Job, delay_ms: int | None = None) -> None:
    """Send the job's message once the current transaction commits (to be delivered
    ``delay_ms`` later when given).

    A broker that does not take it fails nothing: the job stays queued and unsent
    (``sent_at`` NULL) and ``apps.jobs.outbox`` sends it once the broker is back.
    """
    job_id, queue = job.pk, job.queue
    if job.sent_at is not None:
        Job.objects.filter(pk=job_id).update(sent_at=None)
        job.sent_at = None
    transaction.on_commit(lambda: outbox.publish_on_commit(job_id, queue, delay_ms))


def submit(
    *, owner, kind: str, params: dict[str, Any], name: str = "", team=None,
    visibility: str = "private", cloned_from: Job | None = None, priority: int = JobPriority.NORMAL,
) -> Job:  # fmt: skip
    """Create a queued job of ``kind`` with already validated ``params`` and enqueue it.

    The one place quotas are checked (``apps.usage.quotas``): raises ``QuotaExceeded``
    (429) or ``ParameterLimitExceeded`` (400) and creates nothing.
    """
    job_kind = get_kind(kind)
    queue = job_kind.queue_for(params)
    with transaction.atomic():
        quotas.check_submission(owner=owner, team=team, params=params, queue=queue)
        job = Job.objects.create(
            owner=owner,
            team=team,
            visibility=visibility,
            name=name or job_kind.title,
            kind=kind,
            queue=queue,
            params=params,
            max_attempts=settings.DIGITS_JOB_MAX_ATTEMPTS,
            enqueued_at=timezone.now(),
            cloned_from=cloned_from,
            priority=priority,
        )
        events.append(job.pk, [events.event("status", status=JobStatus.QUEUED, text="Queued")])
        enqueue(job)
    job.refresh_from_db()
    return job


def priority_refused(user, priority: int) -> str | None:
    """Why ``user`` may not give a job ``priority``, or None: high priority needs the
    permission ``jobs.high_priority`` (or staff)."""
    if priority == JobPriority.HIGH and not (user.is_staff or user.has_perm("jobs.high_priority")):
        return "High priority needs the permission 'Can submit high-priority jobs'."
    return None


def claim(job_id: int, worker: str) -> Job | None:
    """Atomically move a queued job to running for ``worker``; None if someone else has it.

    The conditional update is the lock: of two workers holding duplicate
    messages, exactly one sees a changed row.
    """
    now = timezone.now()
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(skip_locked=True)
            .filter(pk=job_id, status=JobStatus.QUEUED)
            .first()
        )
        if job is None:
            return None
        if job.abort_requested:
            _finish_locked(job, JobStatus.ABORTED, text="Aborted before it started")
            return None
        if job.attempts >= job.max_attempts:
            _finish_locked(
                job, JobStatus.ERROR,
                error=f"Gave up after {job.attempts} attempts.",
            )  # fmt: skip
            return None
        job.attempts += 1
        job.status = JobStatus.RUNNING
        job.worker = worker
        job.heartbeat_at = now
        job.started_at = job.started_at or now
        fields = {
            "attempts": job.attempts, "status": job.status, "worker": worker,
            "heartbeat_at": now, "started_at": job.started_at, "error": "",
        }  # fmt: skip
        text = f"Running on {worker}" + (
            f" (attempt {job.attempts} of {job.max_attempts})" if job.attempts > 1 else ""
        )
        events.append(
            job.pk, [events.event("status", status=JobStatus.RUNNING, text=text)],
            status_text=text, **fields,
        )  # fmt: skip
    return job


def _free_devices(job: Job) -> None:
    """Delete the job's device reservations, in the transaction that records its new status
    (the worker's own release after the run, and the reaper's, then find nothing). A
    finished job: so that no one sees it on a GPU. A requeued one: its message goes out on
    that commit and the worker it wakes claims at once; a job that does not fit the devices
    it still held would spend the message and wait for the reaper's resend (minutes)."""
    Reservation.objects.filter(job_id=job.pk).delete()


def _finish_locked(job: Job, status: str, *, error: str = "", text: str = "", result=None):
    """Record a final status. The caller holds the row lock (or owns the running job)."""
    kind = hooks_for(job.kind)
    fields: dict[str, Any] = {
        "status": status,
        "finished_at": timezone.now(),
        "error": error,
        "status_text": text or JobStatus(status).label,
        "eta_seconds": None,
    }
    if status == JobStatus.DONE:
        fields["progress"] = 1.0
        fields["result"] = result or {}
    evs = []
    if error:
        evs.append(events.event("log", level="error", message=error, stream="system"))
    evs.append(events.event("status", status=status, text=fields["status_text"], error=error))
    events.append(job.pk, evs, **fields)
    _free_devices(job)
    for name, value in fields.items():
        setattr(job, name, value)
    if status == JobStatus.DONE:
        kind.on_done(job)
    else:
        kind.on_failed(job)
    if status != JobStatus.DONE:
        discard_later(job.staging_prefix)


def discard_later(staging_prefix: str) -> None:
    """Discard an attempt's staging once the transaction commits. The store may be what
    failed the job: then the sweeper (``apps.jobs.sweeper``) removes it later."""

    def discard():
        try:
            get_store().discard_prefix(staging_prefix)
        except Exception as exc:
            log.warning("could not discard %s (left to the sweeper): %s", staging_prefix, exc)

    transaction.on_commit(discard)


def complete(job: Job, result: dict[str, Any] | None) -> None:
    """Publish the attempt's staged artifacts and mark the job done."""
    store = get_store()
    store.publish_prefix(job.staging_prefix, job.artifact_prefix)
    with transaction.atomic():
        for key in store.list(job.artifact_prefix):
            JobArtifact.objects.update_or_create(
                job=job,
                name=key[len(job.artifact_prefix) :],
                defaults={"key": key, "size": store.size(key)},
            )
        _finish_locked(job, JobStatus.DONE, result=result, text="Done")


def fail(job: Job, error: str) -> None:
    with transaction.atomic():
        _finish_locked(job, JobStatus.ERROR, error=error)


def mark_aborted(job: Job) -> None:
    with transaction.atomic():
        _finish_locked(job, JobStatus.ABORTED, text="Aborted")


def request_abort(job: Job, by=None) -> Job:
    """Ask a job to stop. A queued job stops at once; a running one within seconds.

    The runner polls ``abort_requested`` and kills the job process (see
    ``apps.jobs.runner``); finished jobs cannot be aborted.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job.pk).first()
        if job is None:
            raise JobStateError("The job was deleted meanwhile.")
        if job.status in FINAL_STATUSES:
            raise JobStateError(f"The job is already {job.get_status_display().lower()}.")
        who = f" by {by.get_username()}" if by is not None else ""
        events.append(
            job.pk,
            [
                events.event(
                    "log", level="warning", message=f"Abort requested{who}.", stream="system"
                )
            ],
            abort_requested=True,
        )
        job.abort_requested = True
        if job.status == JobStatus.QUEUED:
            _finish_locked(job, JobStatus.ABORTED, text="Aborted before it started")
    return job


def requeue_or_fail(job: Job, reason: str) -> str:
    """After losing the worker (stale heartbeat, killed process): retry if attempts remain.

    Returns the new status. The caller holds the row lock.
    """
    if job.abort_requested:
        _finish_locked(job, JobStatus.ABORTED, text="Aborted")
        return JobStatus.ABORTED
    if job.attempts >= job.max_attempts:
        _finish_locked(
            job, JobStatus.ERROR,
            error=f"{reason} Gave up after {job.attempts} of {job.max_attempts} attempts.",
        )  # fmt: skip
        return JobStatus.ERROR
    now = timezone.now()
    text = f"{reason} Retrying (attempt {job.attempts + 1} of {job.max_attempts})."
    events.append(
        job.pk,
        [
            events.event("log", level="warning", message=text, stream="system"),
            events.event("status", status=JobStatus.QUEUED, text=text),
        ],
        status=JobStatus.QUEUED, worker="", enqueued_at=now, status_text=text,
    )  # fmt: skip
    discard_later(job.staging_prefix)
    job.status = JobStatus.QUEUED
    _free_devices(job)
    enqueue(job)
    return JobStatus.QUEUED


def hand_back(job: Job, reason: str) -> str:
    """The infrastructure failed the job (the artifact store stayed unreachable): queue it
    again after a backoff, without using up one of its attempts.

    ``DIGITS_JOB_MAX_INFRA_RETRIES`` such hand-backs end the job in error, saying why.
    The caller holds the row lock. Returns the new status.
    """
    if job.abort_requested:
        _finish_locked(job, JobStatus.ABORTED, text="Aborted")
        return JobStatus.ABORTED
    limit = settings.DIGITS_JOB_MAX_INFRA_RETRIES
    if job.infra_retries >= limit:
        _finish_locked(
            job, JobStatus.ERROR,
            error=f"{reason} Gave up after {limit} retries for infrastructure faults.",
        )  # fmt: skip
        return JobStatus.ERROR
    delay = min(60, settings.DIGITS_JOB_INFRA_RETRY_DELAY * 2**job.infra_retries)
    short = f"Infrastructure fault: retrying in {delay} s (attempts unchanged)."
    text = f"{reason} {short}"
    stale_staging = job.staging_prefix
    job.attempts -= 1  # not the job's fault
    job.infra_retries += 1
    job.status = JobStatus.QUEUED
    events.append(
        job.pk,
        [
            events.event("log", level="warning", message=text, stream="system"),
            events.event("status", status=JobStatus.QUEUED, text=short),
        ],
        status=JobStatus.QUEUED, worker="", enqueued_at=timezone.now(), status_text=short,
        attempts=job.attempts, infra_retries=job.infra_retries,
    )  # fmt: skip
    _free_devices(job)
    enqueue(job, delay_ms=delay * 1000)
    discard_later(stale_staging)
    return JobStatus.QUEUED


def share_like(job_id: int | None, obj) -> None:
    """Give a job the sharing of the object it builds, so whoever sees one sees the other.

    Through ``events.update``: the job lists get the new sharing, and sockets of
    viewers who may no longer see the job stop receiving.
    """
    if job_id is not None:
        events.update(job_id, team=obj.team, visibility=obj.visibility)


def sharing_for(user, team, visibility: str) -> tuple[Any, str]:
    """The team and visibility of a copy ``user`` makes: the original's where ``user`` may
    share with its team, private otherwise."""
    if team is not None and not permissions.can_share_with(user, team):
        return None, Visibility.PRIVATE
    return team, visibility


def clone(job: Job, user) -> Job:
    """A new queued job like ``job`` (which ``user`` may see), owned by ``user``.

    A kind that builds a domain object (training, inference, dataset builds) is cloned
    by the app owning the object (``apps.jobs.kinds.register_domain``): a new object for
    ``user``, with the rights creating one needs. Any other kind needs what submitting
    it needs: a kind users may submit, with parameters valid for ``user``. Raises
    ``CloneRefused``.
    """
    rules = domain_rules(job.kind)
    if rules is not None:
        return rules.clone(job, user)
    try:
        kind = get_kind(job.kind)
    except LookupError:
        raise CloneRefused(f"Job kind {job.kind} is not installed any more.") from None
    if not kind.user_creatable:
        raise CloneRefused(
            f"Jobs of kind {job.kind} are not submitted directly; clone their object."
        )
    try:
        params = kind.validate_params(job.params, user)
    except ValidationError as exc:
        raise CloneRefused(f"The job's parameters are not valid any more: {exc.detail}") from None
    team, visibility = sharing_for(user, job.team, job.visibility)
    return submit(
        owner=user, kind=job.kind, params=params, name=job.name, team=team,
        visibility=visibility, cloned_from=job,
    )  # fmt: skip


def shown_params(job: Job, user) -> dict[str, Any]:
    """``job.params`` as ``user`` may see them (REST, pages): what they may not see left out.

    The one place params are filtered for display; the job's app decides what to leave
    out (e.g. the manifest of a private dataset a shared model was trained on).
    """
    rules = domain_rules(job.kind)
    if rules is None or rules.shown_params is None:
        return job.params
    return rules.shown_params(job.params, user)


def delete(job: Job) -> None:
    """Delete a finished job, its events and its artifacts.

    The state is checked on the locked row: a job resumed, claimed or deleted meanwhile
    is a conflict (``JobStateError``), never a half-deleted job.
    """
    prefix, staging = job.artifact_prefix, f"_staging/jobs/{job.pk}/"
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job.pk).first()
        if job is None:
            raise JobStateError("The job was deleted meanwhile.")
        if job.is_active:
            raise JobStateError("The job is still active; abort it first.")
        hooks_for(job.kind).on_delete(job)
        job.delete()

        def remove_artifacts():
            store = get_store()
            store.delete_prefix(prefix)
            store.discard_prefix(staging)

        transaction.on_commit(remove_artifacts)
