from django.db import models

from apps.core.models import OwnedModel


class TrainedModel(OwnedModel):
    """A network trained (or being trained) on a dataset by a training job."""

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        ERROR = "error", "Error"
        ABORTED = "aborted", "Aborted"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="models")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRAINING)
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    network = models.JSONField(default=dict, blank=True, help_text="Where the network comes from.")
    solver = models.JSONField(default=dict, blank=True, help_text="Solver options used.")
    gpus = models.JSONField(default=dict, blank=True)
    result = models.JSONField(
        default=dict, blank=True, help_text="Per-epoch metrics, best epoch, snapshots, summary."
    )
    best_epoch = models.PositiveIntegerField(null=True, blank=True)
    sweep = models.CharField(
        max_length=32, blank=True, db_index=True, help_text="Models created together by a sweep."
    )
    request_count = models.PositiveBigIntegerField(
        default=0, help_text="Single images classified with it (warm inference, no job)."
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "model"
        permissions = [
            ("run_custom_code", "Can run custom network code and uploaded models"),
        ]

    def __str__(self):
        return self.name
