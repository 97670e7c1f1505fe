from django.db import models

from apps.core import permissions
from apps.core.models import OwnedModel, OwnedQuerySet


class EvaluationQuerySet(OwnedQuerySet):
    def visible_to(self, user):
        """Evaluations ``user`` may see: visible themselves, of a model they may see.

        An evaluation of a model no longer shared with ``user`` is gone for them, even
        their own (its figures describe the model).
        """
        return permissions.visible(self, user).filter(permissions.visible_q(user, "model__"))


class Evaluation(OwnedModel):
    """A trained model's snapshot run over many inputs by an evaluation job
    (``model.evaluate``): its figures and, once done, its per-entry predictions."""

    class Source(models.TextChoices):
        STAGE = "stage", "Dataset stage"
        ARCHIVE = "archive", "Uploaded archive"
        LIST = "list", "Text list"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        ERROR = "error", "Error"
        ABORTED = "aborted", "Aborted"

    name = models.CharField(max_length=200)
    model = models.ForeignKey(
        "mlmodels.TrainedModel", on_delete=models.CASCADE, related_name="evaluations"
    )
    epoch = models.PositiveIntegerField()
    source = models.CharField(max_length=10, choices=Source.choices)
    dataset = models.ForeignKey(
        "datasets.Dataset", on_delete=models.CASCADE, null=True, blank=True, related_name="+",
        help_text="The dataset whose stage was evaluated (source stage).",
    )  # fmt: skip
    stage = models.CharField(max_length=10, blank=True)
    inputs = models.JSONField(
        default=dict, blank=True, help_text="The uploaded files' names and keys."
    )
    top_n = models.PositiveSmallIntegerField(default=5)
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    summary = models.JSONField(default=dict, blank=True, help_text="apps.evaluations.metrics")
    predictions_key = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EvaluationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name

    @property
    def has_labels(self) -> bool:
        return bool(self.summary.get("labelled"))

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.summary.get("classes", [])]

    def same_entries_as(self, other) -> bool:
        """Whether both classified the same entries in the same order (what "A right,
        B wrong" compares): one dataset's stage, or the same uploaded files."""
        if self.source != other.source or self.status != "done" or other.status != "done":
            return False
        if self.source == self.Source.STAGE:
            return (self.dataset_id, self.stage) == (other.dataset_id, other.stage)
        keys = ("archive_key", "list_key")
        return all(self.inputs.get(k) == other.inputs.get(k) for k in keys)
