"""Accounting hooks on other apps' rows: a job's published artifacts are its bytes written."""

from django.db.models.signals import post_save

from apps.jobs.models import JobArtifact
from apps.usage import accounting


def _artifact_saved(sender, instance, raw=False, **kwargs):
    if not raw:
        accounting.count_artifacts(instance.job)


def connect() -> None:
    post_save.connect(_artifact_saved, sender=JobArtifact, dispatch_uid="usage-artifacts")
