from django.db import models

from apps.core.models import OwnedModel


class Dataset(OwnedModel):
    """A dataset built by a job from a data source; its bytes live in the artifact store.

    Dataset types (image classification, segmentation, plugins) add their own
    options and pages; this row is what every type shares.
    """

    class Status(models.TextChoices):
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        ERROR = "error", "Error"
        ABORTED = "aborted", "Aborted"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    type = models.CharField(
        max_length=100, help_text="The dataset type (data plugin) that built it."
    )
    options = models.JSONField(default=dict, blank=True, help_text="The dataset form's values.")
    manifest = models.JSONField(
        default=dict, blank=True, help_text="Shapes, dtypes, counts per stage, shards, checksums."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BUILDING)
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name

    @property
    def data_prefix(self) -> str:
        """Where the dataset's shards live: the published artifacts of its build job."""
        return f"jobs/{self.job_id}/"

    def palette(self) -> list[tuple[int, int, int]]:
        """The class colours of the dataset's type, or the default when its plugin is gone."""
        from apps.core.plugins import catalog
        from apps.core.plugins.interfaces import DEFAULT_PALETTE

        try:
            ingestion = catalog.get_data_ingestion(self.type)(**(self.options or {}))
            return ingestion.get_palette()
        except Exception:  # plugin removed, or it refuses the stored options
            return DEFAULT_PALETTE

    def stage_count(self, stage: str) -> int:
        return self.manifest.get("stages", {}).get(stage, {}).get("count", 0)
