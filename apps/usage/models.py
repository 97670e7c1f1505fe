"""Quotas (per user, per team), what each job used, and the audit log.

See docs/decisions/0017-quotas-and-accounting.md.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

#: The resource quotas: what a user or team may hold at once or use in a month.
RESOURCE_FIELDS = ("concurrent_jobs", "concurrent_gpus", "gpu_hours_per_month", "storage_bytes")
#: Limits on job parameters that cost resources.
PARAMETER_FIELDS = ("max_processes", "max_steps", "max_epochs", "max_image_side")


class Quota(models.Model):
    """Limits of one user or one team that replace the settings' defaults.

    A blank field keeps the default (``DIGITS_QUOTA_*``); set by administrators in
    the Django admin.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
        related_name="quota",
    )  # fmt: skip
    team = models.OneToOneField(
        "accounts.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="quota"
    )
    concurrent_jobs = models.PositiveIntegerField(
        null=True, blank=True, help_text="Jobs queued or running at once."
    )
    concurrent_gpus = models.PositiveIntegerField(
        null=True, blank=True, help_text="GPUs requested by the jobs queued or running at once."
    )
    gpu_hours_per_month = models.FloatField(
        null=True, blank=True, help_text="GPU-hours used per calendar month (UTC)."
    )
    storage_bytes = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Total size of the artifacts of the jobs, the snapshots of the models and the uploads owned.",
    )
    max_processes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Encoding processes of a dataset build."
    )
    max_steps = models.PositiveIntegerField(
        null=True, blank=True, help_text="Steps of a worker check."
    )
    max_epochs = models.PositiveIntegerField(
        null=True, blank=True, help_text="Epochs of a training job."
    )
    max_image_side = models.PositiveIntegerField(
        null=True, blank=True, help_text="Width and height of a dataset's images, in pixels."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, team__isnull=True)
                | models.Q(user__isnull=True, team__isnull=False),
                name="quota_user_xor_team",
            )
        ]

    def __str__(self):
        return f"Quota of {'user ' + str(self.user) if self.user_id else 'team ' + str(self.team)}"

    def clean(self):
        super().clean()
        if (self.user_id is None) == (self.team_id is None):
            raise ValidationError("Choose either a user or a team.")


class JobUsage(models.Model):
    """What one job used, kept when the job is deleted (accounting outlives jobs).

    ``wall_seconds`` is the run time of its job process (every attempt), ``gpu_seconds``
    that times the GPUs it requested, ``cpu_seconds`` and ``peak_memory_bytes`` the
    process's own measure (``os.wait4``), ``bytes_written`` the size of its artifacts.
    """

    job = models.OneToOneField(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="usage"
    )
    job_number = models.PositiveBigIntegerField(db_index=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=100)
    #: The model a training job trained (``params["model_id"]``), for the "by model" report.
    model_id = models.PositiveBigIntegerField(null=True, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    gpus = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    wall_seconds = models.FloatField(default=0)
    gpu_seconds = models.FloatField(default=0)
    cpu_seconds = models.FloatField(default=0)
    peak_memory_bytes = models.PositiveBigIntegerField(default=0)
    bytes_written = models.PositiveBigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"usage of job #{self.job_number}"


class StoredObject(models.Model):
    """An object a job published outside its own artifacts (a training snapshot): its size
    and whose storage it takes, until the object is deleted.

    A job's own artifacts are ``JobArtifact`` rows, deleted with the job. A snapshot belongs
    to its model instead: it outlives the job that wrote it (deleting a training job keeps
    the model; a resumed model's earlier snapshots were written by an earlier job) and goes
    when the model is deleted. Written by the artifact gate when it publishes
    (``apps.usage.accounting.record_published``); removed by whoever deletes the object.
    See docs/decisions/0020-snapshot-storage-ledger.md.
    """

    key = models.CharField(max_length=1024, unique=True)
    size = models.PositiveBigIntegerField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    #: The job that published it (its ``bytes_written`` counts it); kept when the job goes.
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.key} ({self.size} bytes)"


class AuditAction(models.TextChoices):
    LOGIN = "login", "Login"
    LOGIN_FAILED = "login_failed", "Failed login"
    LOGOUT = "logout", "Logout"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    SHARING_CHANGED = "sharing_changed", "Sharing changed"
    PERMISSION_CHANGED = "permission_changed", "Permission changed"
    QUOTA_CHANGED = "quota_changed", "Quota changed"
    DELETED = "deleted", "Deleted"


class AuditEvent(models.Model):
    """One security-relevant action; written by ``apps.usage.audit``, read by admins."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=30, choices=AuditAction.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    actor_name = models.CharField(max_length=150, blank=True)
    target_type = models.CharField(max_length=100, blank=True, db_index=True)
    target_id = models.CharField(max_length=64, blank=True)
    target = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target}"
