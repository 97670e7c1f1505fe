"""Which queued job a worker runs next, on which GPUs (docs/decisions/0016-gpu-scheduling.md).

A broker message is a wake-up: the worker that gets one claims the best eligible
queued job of the message's queue from the database, whatever job the message
named. Best means, in order:

1. higher priority (``Job.priority``: high, normal, low);
2. the account (the job's team, else its owner) with the least running share, then
   the owner with the least running share — a running job weighs as many GPUs as it
   holds, at least one — so one user's sweep does not starve a colleague;
3. older first (``created_at``; a retried job keeps its age).

Eligible means its GPU request fits this node's free devices now. A job that does
not fit is skipped, not claimed: it waits in the queue and spends no attempt. A
waiting job that would fit the node once devices free up keeps jobs of lower
priority off this node (no starvation by backfill); jobs of its own priority may
still start on the devices it cannot use yet.

Claims on a node are serialised by locking the node's row; the job row is
claimed with ``services.claim`` (``SELECT ... FOR UPDATE SKIP LOCKED``), in the
same transaction that records the reservations.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Count, F

from apps.cluster.devices import node_name
from apps.cluster.models import Device, Node, Reservation
from apps.jobs import services
from apps.jobs.models import Job, JobStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuRequest:
    """``count`` devices; ``ids``: exactly these; ``optional``: one if the node has any."""

    count: int = 0
    ids: tuple[str, ...] = ()
    optional: bool = False

    def describe(self) -> str:
        if self.ids:
            return "GPU " + ",".join(self.ids)
        if self.optional:
            return "any one GPU"
        return f"{self.count} GPU{'s' if self.count != 1 else ''}" if self.count else "no GPU"


def request_for(job: Job) -> GpuRequest:
    """The job's GPU request: ``params["gpus"]`` (``mode`` next / count / specific / none,
    as training and the worker check take it); without one, a job of the ``gpu`` queue
    asks for any one GPU and any other job for none."""
    gpus = job.params.get("gpus") if isinstance(job.params, dict) else None
    if not isinstance(gpus, dict):
        gpus = {"mode": "next" if job.queue == "gpu" else "none"}
    mode = gpus.get("mode", "next")
    if mode == "none":
        return GpuRequest()
    if mode == "specific":
        ids = tuple(dict.fromkeys(str(i) for i in gpus.get("ids") or ()))
        return GpuRequest(count=len(ids), ids=ids)
    if mode == "count":
        return GpuRequest(count=max(int(gpus.get("count") or 1), 1))
    return GpuRequest(count=1, optional=True)


def fits(request: GpuRequest, devices: list, free: list) -> list | None:
    """The devices of ``free`` the request gets now, or None if it must wait."""
    if request.count == 0 or (request.optional and not devices):
        return []
    if request.ids:
        chosen = [d for d in free if d.ident in request.ids]
        return chosen if len(chosen) == request.count else None
    return free[: request.count] if len(free) >= request.count else None


def could_fit(request: GpuRequest, devices: list) -> bool:
    """Whether the request fits a node with ``devices`` once they are all free."""
    return fits(request, devices, devices) is not None


# --- ranking ------------------------------------------------------------------------
def account(job: Job) -> tuple[str, int]:
    return ("team", job.team_id) if job.team_id else ("user", job.owner_id)


@dataclass
class Shares:
    """Running share per account and per owner (GPUs held, at least one per job)."""

    accounts: Counter = field(default_factory=Counter)
    owners: Counter = field(default_factory=Counter)

    def add(self, job: Job, weight: int) -> None:
        self.accounts[account(job)] += weight
        self.owners[job.owner_id] += weight

    def key(self, job: Job) -> tuple:
        return (-job.priority, self.accounts[account(job)], self.owners[job.owner_id],
                job.created_at, job.pk)  # fmt: skip


def running_shares() -> Shares:
    shares = Shares()
    running = Job.objects.filter(status=JobStatus.RUNNING).annotate(held=Count("reservations"))
    for job in running.only("owner_id", "team_id"):
        shares.add(job, max(job.held, 1))
    return shares


def queued(queue: str):
    return Job.objects.filter(status=JobStatus.QUEUED, queue=queue).select_related("owner", "team")


def ranked(queue: str, shares: Shares | None = None) -> list[Job]:
    """The queued jobs of ``queue`` in the order the scheduler considers them now."""
    shares = shares or running_shares()
    return sorted(queued(queue), key=shares.key)


def in_start_order(jobs: list[Job], shares: Shares) -> list[Job]:
    """``jobs`` in the order they would start if each took a slot as soon as it is
    first: each start adds to its account's share (for queue positions)."""
    pending, order = list(jobs), []
    while pending:
        best = min(pending, key=shares.key)
        pending.remove(best)
        order.append(best)
        shares.add(best, max(request_for(best).count, 1))
    return order


# --- claiming -------------------------------------------------------------------------
@dataclass
class Claimed:
    job: Job
    devices: list[str]
    node_has_gpus: bool

    def environment(self) -> dict[str, str]:
        """What the job process's environment gets: exactly its devices, on a GPU node."""
        if not self.node_has_gpus:
            return {}
        return {"CUDA_VISIBLE_DEVICES": ",".join(self.devices), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def _free(devices: list[Device]) -> list[Device]:
    held = Counter(
        Reservation.objects.filter(device__in=devices).values_list("device_id", flat=True)
    )
    if settings.DIGITS_GPU_SHARING:
        return sorted(devices, key=lambda d: (held[d.pk], d.index))
    return [d for d in devices if not held[d.pk]]


def claim(worker: str, queue: str) -> Claimed | None:
    """Claim the best eligible queued job of ``queue`` for ``worker`` on this node, with
    its devices reserved; None when nothing fits now."""
    with transaction.atomic():
        # The node's row is the lock: claims on a node see each other's reservations and
        # running shares.
        node, _ = Node.objects.select_for_update().get_or_create(name=node_name())
        devices = list(Device.objects.filter(node=node).order_by("index"))
        free = _free(devices)
        blocked_below = None
        for job in ranked(queue):
            request = request_for(job)
            chosen = fits(request, devices, free)
            if chosen is None:
                if blocked_below is None and could_fit(request, devices):
                    blocked_below = job.priority  # it waits for devices: keep them for it
                continue
            if chosen and blocked_below is not None and job.priority < blocked_below:
                continue
            claimed = services.claim(job.pk, worker)
            if claimed is None:
                continue
            Reservation.objects.bulk_create(
                Reservation(device=device, job=claimed, worker=worker) for device in chosen
            )
            return Claimed(claimed, [d.ident for d in chosen], bool(devices))
    return None


def release(job_id: int, worker: str) -> None:
    """Free the devices ``worker`` held for the job (the reaper does it if this fails)."""
    with contextlib.suppress(DatabaseError):
        Reservation.objects.filter(job_id=job_id, worker=worker).delete()


def release_stale() -> int:
    """Drop reservations whose job no longer runs under their worker (worker lost, job
    requeued or finished); the reaper calls this. Returns how many."""
    count, _ = (
        Reservation.objects.exclude(job__status=JobStatus.RUNNING, job__worker=F("worker"))
        .select_related(None)
        .delete()
    )
    if count:
        log.info("released %s device reservation(s) of lost or finished jobs", count)
    return count
