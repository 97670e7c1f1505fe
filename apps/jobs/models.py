from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.models import OwnedModel


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    ERROR = "error", "Error"
    ABORTED = "aborted", "Aborted"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL_STATUSES = (JobStatus.DONE, JobStatus.ERROR, JobStatus.ABORTED)


class JobPriority(models.IntegerChoices):
    """Queued jobs of higher priority start first (``apps.cluster.scheduling``); ``high``
    needs the permission ``jobs.high_priority`` (or staff)."""

    LOW = 0, "Low"
    NORMAL = 1, "Normal"
    HIGH = 2, "High"


class Job(OwnedModel):
    """A long-running piece of work (ingestion, training, ...) run by a worker.

    State machine (see docs/architecture.md)::

        queued -> running -> done | error | aborted
        queued -> aborted            (abort before a worker claimed it)
        running -> queued            (reaper: worker lost, attempts left)
        running -> queued            (infrastructure fault: attempts unchanged, after a delay)
    """

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=100, db_index=True)
    queue = models.CharField(max_length=50, default="default")
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0)
    eta_seconds = models.PositiveIntegerField(null=True, blank=True)
    status_text = models.CharField(max_length=200, blank=True)
    priority = models.SmallIntegerField(choices=JobPriority.choices, default=JobPriority.NORMAL)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    # Times the job was handed back for an infrastructure fault (the store unreachable):
    # these do not use up ``attempts``; ``DIGITS_JOB_MAX_INFRA_RETRIES`` bounds them.
    infra_retries = models.PositiveSmallIntegerField(default=0)
    abort_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    last_seq = models.PositiveBigIntegerField(default=0)
    cloned_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="clones"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    #: When the broker took the job's message; NULL while queued and not yet sent (the
    #: outbox, ``apps.jobs.outbox``, retries those).
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat"),
            models.Index(fields=["owner", "-created_at"], name="job_owner_created"),
        ]
        permissions = [("high_priority", "Can submit high-priority jobs")]

    def __str__(self):
        return f"{self.name} (#{self.pk}, {self.kind})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def heartbeat_age_seconds(self) -> int | None:
        """Seconds since the worker's last heartbeat (the job page shows it)."""
        if self.heartbeat_at is None:
            return None
        return max(0, int((timezone.now() - self.heartbeat_at).total_seconds()))

    @property
    def heartbeat_stale(self) -> bool:
        """Older than ``DIGITS_JOB_STALE_SECONDS``: the reaper is about to act."""
        age = self.heartbeat_age_seconds
        return age is not None and age > settings.DIGITS_JOB_STALE_SECONDS

    @property
    def artifact_prefix(self) -> str:
        """Where the job's published artifacts live in the artifact store."""
        return f"jobs/{self.pk}/"

    @property
    def staging_prefix(self) -> str:
        """Where the running attempt writes; published to ``artifact_prefix`` on success."""
        return f"_staging/jobs/{self.pk}/attempt-{self.attempts}/"


class JobEvent(models.Model):
    """One structured event of a job, numbered by a per-job sequence.

    ``type`` is one of status, progress, log, metric; ``data`` holds the payload
    (see ``apps.jobs.events``).
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=20)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="unique_job_event_seq")]

    def __str__(self):
        return f"#{self.job_id}.{self.seq} {self.type}"


class JobArtifact(models.Model):
    """A published file of a job, in the artifact store under the job's prefix."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=300)
    key = models.CharField(max_length=500, unique=True)
    size = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "name"]
        constraints = [
            models.UniqueConstraint(fields=["job", "name"], name="unique_job_artifact_name")
        ]

    def __str__(self):
        return self.key


class Beat(models.Model):
    """The last sign of life of a background process (``apps.jobs.liveness``): the reaper's
    last pass, a worker's consumer loop. For metrics and the admin; the probes read a file."""

    name = models.CharField(max_length=200, unique=True)
    role = models.CharField(max_length=20, db_index=True)
    at = models.DateTimeField()
    #: The process's counters at its last beat (the reaper's jobs handed back, ...).
    counters = models.JSONField(default=dict, blank=True)

    def __str__(self):
        return f"{self.name} at {self.at:%H:%M:%S}"


class JobSeries(models.Model):
    """A job's metric series cut for charts (``apps.jobs.series``), kept so that any web
    process answers a long run's first chart from it instead of reading every event.

    ``data``: the cut points of every series, float64 rows ``(step, value, unix time)``,
    series after series in the order of ``lengths`` (``[[series, rows], ...]``); ``counts``:
    the finite points logged per series; ``last_seq``: the events it covers.
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="series_cuts")
    points = models.PositiveIntegerField()
    last_seq = models.PositiveBigIntegerField()
    lengths = models.JSONField(default=list)
    counts = models.JSONField(default=dict)
    data = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "points"], name="unique_job_series_points")
        ]

    def __str__(self):
        return f"#{self.job_id} series ({self.points} points, seq {self.last_seq})"
