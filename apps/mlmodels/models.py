from django.db import models

from apps.core.models import OwnedModel


class TrainedModel(OwnedModel):
    """A network trained (or being trained) on a dataset by a training job."""

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        ERROR = "error", "Error"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="models")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRAINING)
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "model"

    def __str__(self):
        return self.name
