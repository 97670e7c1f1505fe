"""The cluster as a user may see it: nodes, devices and holders, the queues (page and API).

Everyone sees the nodes and which devices are busy; a holder's job is named only to
those who may see the job. In the queues, staff see every waiting job; anyone else
sees the positions of their own jobs only (and how long each queue is).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.cluster.models import Node, Reservation
from apps.cluster.scheduling import (
    could_fit,
    fits,
    in_start_order,
    queued,
    request_for,
    running_shares,
)
from apps.jobs.kinds import QUEUES
from apps.jobs.models import Job, JobStatus


@dataclass
class NodeState:
    node: Node
    online: bool
    devices: list
    free: list


def _job_ref(job: Job) -> dict:
    return {"id": job.pk, "name": job.name, "owner": job.owner.get_username()}


def _device(device, visible: set[int]) -> dict:
    holders = [
        _job_ref(r.job) if r.job_id in visible else {"id": None, "name": "", "owner": ""}
        for r in device.reservations.all()
    ]
    return {
        "index": device.index, "ident": device.ident, "name": device.name,
        "utilization": device.utilization, "memory_used_mb": device.memory_used_mb,
        "memory_total_mb": device.memory_total_mb, "updated_at": device.updated_at,
        "held_by": holders,
    }  # fmt: skip


def node_states() -> list[NodeState]:
    stale = timezone.now() - timedelta(seconds=3 * settings.DIGITS_NODE_HEARTBEAT_SECONDS)
    nodes = Node.objects.prefetch_related("devices__reservations__job__owner")
    states = []
    for node in nodes:
        devices = list(node.devices.all())
        free = devices if settings.DIGITS_GPU_SHARING else [
            d for d in devices if not d.reservations.all()
        ]  # fmt: skip
        online = node.last_seen is not None and node.last_seen >= stale
        states.append(NodeState(node, online, devices, free))
    return states


def waiting_for(job: Job, states: list[NodeState]) -> str:
    """Why a queued job has not started, in words."""
    request = request_for(job)
    serving = [s for s in states if s.online and job.queue in s.node.queues]
    if not serving:
        return f"No worker serves the {job.queue} queue now."
    if not any(could_fit(request, s.devices) for s in serving):
        if request.ids:
            return f"Needs {request.describe()}; no node has them all."
        largest = max(len(s.devices) for s in serving)
        return f"Needs {request.describe()}; the largest node has {largest}."
    if any(fits(request, s.devices, s.free) is not None for s in serving):
        return "Starts when a worker slot frees up."
    return f"Waiting for {request.describe()} to free up."


def _estimates(queue: str) -> list[float]:
    """Seconds until the running jobs of ``queue`` end, soonest first (those with an ETA)."""
    running = Job.objects.filter(status=JobStatus.RUNNING, queue=queue, eta_seconds__isnull=False)
    return sorted(running.values_list("eta_seconds", flat=True))


def queue_view(queue: str, user, states: list[NodeState]) -> dict:
    order = in_start_order(list(queued(queue)), running_shares())
    etas, now = _estimates(queue), timezone.now()
    entries, startable = [], 0
    for position, job in enumerate(order, 1):
        reason = waiting_for(job, states)
        if "largest node" in reason or "no node" in reason:
            estimate = None
        else:  # starts when the n-th running job ends, by the ETAs known
            startable += 1
            estimate = (
                (now + timedelta(seconds=etas[startable - 1])) if startable <= len(etas) else None
            )
        if not (user.is_staff or job.owner_id == user.pk):
            continue
        entries.append({
            "position": position, "job": _job_ref(job), "priority": job.get_priority_display(),
            "gpus": request_for(job).describe(), "waiting_for": reason,
            "estimated_start": estimate,
        })  # fmt: skip
    running = Job.objects.filter(status=JobStatus.RUNNING, queue=queue).count()
    return {"name": queue, "queued": len(order), "running": running, "jobs": entries}


def overview(user) -> dict:
    """The cluster page's and ``GET /api/v1/cluster/``'s content for ``user``."""
    states = node_states()
    held_jobs = Reservation.objects.values_list("job_id", flat=True)
    visible = set(
        Job.objects.visible_to(user).filter(pk__in=held_jobs).values_list("pk", flat=True)
    )
    nodes = [
        {
            "name": s.node.name,
            "online": s.online,
            "last_seen": s.node.last_seen,
            "queues": s.node.queues,
            "slots": s.node.slots,
            "nvml": s.node.nvml,
            "devices": [_device(d, visible) for d in s.devices],
        }  # fmt: skip
        for s in states
    ]
    return {"nodes": nodes, "queues": [queue_view(q, user, states) for q in QUEUES]}
