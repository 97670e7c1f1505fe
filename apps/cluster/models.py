"""Worker nodes, their GPUs, and which job holds which GPU (docs/decisions/0016).

A node is a machine (or pod) running job workers; every worker process on it
shares its devices. A reservation is a device held by a running job for its
life; it lives in the database so it survives a worker restart, and the reaper
drops it once its job no longer runs there (``apps.cluster.scheduling``).
"""

from django.db import models


class Node(models.Model):
    name = models.CharField(max_length=200, unique=True)
    queues = models.JSONField(default=list, blank=True)
    slots = models.PositiveIntegerField(default=1, help_text="Worker threads (jobs at once).")
    nvml = models.BooleanField(default=False, help_text="Devices found through NVML.")
    started_at = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Device(models.Model):
    """A GPU of a node; ``ident`` is what goes into ``CUDA_VISIBLE_DEVICES``."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="devices")
    index = models.PositiveIntegerField()
    ident = models.CharField(max_length=100)
    name = models.CharField(max_length=200, blank=True)
    memory_total_mb = models.PositiveIntegerField(null=True, blank=True)
    memory_used_mb = models.PositiveIntegerField(null=True, blank=True)
    utilization = models.PositiveSmallIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["node", "index"]
        constraints = [models.UniqueConstraint(fields=["node", "index"], name="unique_node_device")]

    def __str__(self):
        return f"{self.node.name}/gpu{self.index}"


class Reservation(models.Model):
    """``device`` is held by ``job``, run by the worker thread ``worker``."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="reservations")
    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="reservations")
    worker = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["device", "created_at"]
        constraints = [models.UniqueConstraint(fields=["device", "job"], name="unique_device_job")]

    def __str__(self):
        return f"{self.device} held by job #{self.job_id}"
