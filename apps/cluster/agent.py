"""A worker process's report of its node: devices when it starts, figures on every beat.

Started by ``manage.py jobworker`` and the embedded worker of ``manage.py serve``.
Every worker process of a node reports the same devices (they share them); a
device that disappears from the list is dropped unless a job still holds it.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone

from apps.cluster.devices import DeviceInfo, discover, node_name
from apps.cluster.models import Device, Node

log = logging.getLogger(__name__)


def _figures(info: DeviceInfo, now) -> dict:
    return {
        "ident": info.ident, "name": info.name, "memory_total_mb": info.memory_total_mb,
        "memory_used_mb": info.memory_used_mb, "utilization": info.utilization, "updated_at": now,
    }  # fmt: skip


def report(queues: list[str] | None = None, slots: int | None = None) -> Node:
    """Record this node, its devices and their figures; with ``queues``, as just started."""
    devices, nvml = discover()
    now = timezone.now()
    with transaction.atomic():
        node, _ = Node.objects.get_or_create(name=node_name())
        node.last_seen, node.nvml = now, nvml
        if queues is not None:
            node.queues = sorted(set(node.queues) | set(queues))
            node.slots, node.started_at = slots or 1, now
        node.save()
        for info in devices:
            Device.objects.update_or_create(
                node=node, index=info.index, defaults=_figures(info, now)
            )
        Device.objects.filter(
            node=node, index__gte=len(devices), reservations__isnull=True
        ).delete()
    return node


class NodeAgent:
    """Reports the node now and then every ``DIGITS_NODE_HEARTBEAT_SECONDS`` in a thread."""

    def __init__(self, queues: list[str], slots: int):
        self.queues, self.slots = list(queues), slots
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="node-agent", daemon=True)

    def start(self) -> Node:
        node = report(self.queues, self.slots)
        close_old_connections()
        self.thread.start()
        return node

    def stop(self) -> None:
        self.stop_event.set()

    def _beat(self) -> None:
        while not self.stop_event.wait(settings.DIGITS_NODE_HEARTBEAT_SECONDS):
            try:
                report()
            except DatabaseError as exc:
                log.warning("node report failed (%s); trying again", exc)
            finally:
                close_old_connections()
