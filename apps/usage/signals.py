"""Accounting hooks on other apps' rows and objects: a job's published artifacts are its
bytes written; a user's stored uploads take their storage."""

from django.db.models.signals import post_save

from apps.core import uploads
from apps.jobs import sweeper
from apps.jobs.models import JobArtifact
from apps.usage import accounting


def _artifact_saved(sender, instance, raw=False, **kwargs):
    if not raw:
        accounting.count_artifacts(instance.job)


def _upload_stored(sender, key, size, owner, **kwargs):
    accounting.record_upload(key, size, owner)


def _upload_deleted(sender, key, **kwargs):
    accounting.forget_object(key)


def _area_swept(sender, prefix, **kwargs):
    accounting.forget_stored(prefix)  # (a model deleted without its snapshots, say)


def connect() -> None:
    post_save.connect(_artifact_saved, sender=JobArtifact, dispatch_uid="usage-artifacts")
    uploads.upload_stored.connect(_upload_stored, dispatch_uid="usage-upload-stored")
    uploads.upload_deleted.connect(_upload_deleted, dispatch_uid="usage-upload-deleted")
    sweeper.area_swept.connect(_area_swept, dispatch_uid="usage-area-swept")
