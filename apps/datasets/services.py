"""Creating and deleting datasets."""

from __future__ import annotations

import json
import logging
from pathlib import PurePath
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import ProtectedError

from apps.core import permissions, uploads
from apps.core.plugins.catalog import get_data_ingestion
from apps.core.storage import StoreUnavailable
from apps.datasets.models import Dataset
from apps.datasets.params import DEFAULT_MAX_ERROR_PERCENT, DEFAULT_PROCESSES
from apps.jobs import services as jobs
from apps.jobs.models import Job

log = logging.getLogger(__name__)


class DatasetInUse(Exception):
    """Models were trained on the dataset; it cannot be deleted (409)."""


class _OptionsEncoder(DjangoJSONEncoder):
    def default(self, o):
        if isinstance(o, PurePath):
            return str(o)
        return super().default(o)


def json_options(cleaned_data: dict[str, Any], owner) -> dict[str, Any]:
    """Form values as the JSON the job process receives.

    Uploaded files go to the artifact store as uploads of ``owner`` and become
    ``{"upload_key", "name", "size"}``; paths, decimals and dates become strings.
    """
    values: dict[str, Any] = {}
    try:
        for name, value in cleaned_data.items():
            is_file = isinstance(value, UploadedFile)
            values[name] = uploads.store_upload(value, owner) if is_file else value
    except Exception as exc:
        _discard_after_failure(values, exc)  # one file stored, the next refused: none kept
        raise
    return json.loads(json.dumps(values, cls=_OptionsEncoder))


def _discard_after_failure(options: dict[str, Any], exc: Exception) -> None:
    """Delete the uploads of a submission that failed. In an outage of the store the
    delete would wait out the same retries and fail too: the sweeper removes them then."""
    if isinstance(exc, StoreUnavailable) or not uploads.upload_refs(options):
        return
    try:
        discard_uploads(options)
    except Exception:
        log.exception("could not delete the uploads of a failed submission")


def discard_uploads(options: dict[str, Any]) -> None:
    """Uploads are inputs of one build: once it has finished they are deleted."""
    for ref in uploads.upload_refs(options):
        uploads.delete_upload(ref["upload_key"])


def create(
    *, owner, type_id: str, options: dict[str, Any], name: str, description: str = "",
    team=None, visibility: str = "private", processes: int = DEFAULT_PROCESSES,
    max_error_percent: float = DEFAULT_MAX_ERROR_PERCENT,
    cloned_from: Job | None = None,
) -> Dataset:  # fmt: skip
    """Create a dataset in the building state and submit the job that builds it."""
    get_data_ingestion(type_id)  # fail early for an unknown type
    options = json_options(options, owner)
    try:
        return _create_rows(
            owner=owner, type_id=type_id, options=options, name=name, description=description,
            team=team, visibility=visibility, processes=processes,
            max_error_percent=max_error_percent, cloned_from=cloned_from,
        )  # fmt: skip
    except Exception as exc:
        _discard_after_failure(options, exc)  # the rows are gone with the transaction
        raise


def _create_rows(
    *, owner, type_id, options, name, description, team, visibility, processes,
    max_error_percent, cloned_from,
) -> Dataset:  # fmt: skip
    with transaction.atomic():
        dataset = Dataset.objects.create(
            owner=owner, team=team, visibility=visibility, name=name, description=description,
            type=type_id, options=options,
        )  # fmt: skip
        job = jobs.submit(
            owner=owner, kind="dataset.build", name=f"Build dataset “{name}”", team=team,
            visibility=visibility, cloned_from=cloned_from,
            params={
                "dataset_id": dataset.pk, "type": type_id, "options": options,
                "processes": processes, "max_error_percent": max_error_percent,
            },
        )  # fmt: skip
        dataset.job = job
        dataset.save(update_fields=["job"])
    return dataset


def build(owner, request: dict[str, Any]) -> Dataset:
    """Start what a ``BuildRequest`` asks (its validated data), for the page and the API
    alike; the files it carries are stored here as ``owner``'s uploads."""
    return create(
        owner=owner, type_id=request["type"], options=request["options"], name=request["name"],
        description=request["description"], team=request.get("team"),
        visibility=request["visibility"], processes=request["processes"],
        max_error_percent=request["max_error_percent"],
    )  # fmt: skip


def clone_build(job: Job, user) -> Job:
    """Cloning a build job is building a new dataset of ``user``'s from the same options.

    Files uploaded for a build are the uploader's and are deleted once it ends, so a
    build from uploads is cloned only by its owner while it still runs; otherwise
    ``CloneRefused`` (the same answer whether the files are someone else's or gone).
    """
    params = job.params
    options = params.get("options") or {}
    try:
        for ref in uploads.upload_refs(options):
            uploads.check_owned(ref.get("upload_key"), user)
    except uploads.UnknownUpload:
        raise jobs.CloneRefused(
            "The files uploaded for this build are not available any more (uploads are "
            "deleted once a build ends): create the dataset again with the files."
        ) from None
    original = Dataset.objects.filter(pk=params.get("dataset_id")).first()
    team, visibility = jobs.sharing_for(user, job.team, job.visibility)
    try:
        dataset = create(
            owner=user, type_id=params.get("type", ""), options=options,
            name=f"{original.name} (clone)" if original else job.name,
            description=original.description if original else "", team=team,
            visibility=visibility, processes=params.get("processes", DEFAULT_PROCESSES),
            max_error_percent=params.get("max_error_percent", DEFAULT_MAX_ERROR_PERCENT),
            cloned_from=job,
        )  # fmt: skip
    except LookupError as exc:
        raise jobs.CloneRefused(str(exc)) from None
    return dataset.job


def delete(dataset: Dataset) -> None:
    """Delete the dataset with its build job and shards; refused while models use it.

    Checked on locked rows (its job's, then its own: the order in which the worker
    records the build's outcome), so a model created or a build restarted meanwhile is
    a conflict, never a half-deleted dataset.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=dataset.job_id).first()
        dataset = Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        if dataset is None:
            raise jobs.JobStateError("The dataset was deleted meanwhile.")
        if dataset.models.exists():
            names = ", ".join(dataset.models.values_list("name", flat=True)[:5])
            raise DatasetInUse(f"Models were trained on this dataset ({names}); delete them first.")
        if job is not None and job.is_active:
            raise jobs.JobStateError("The dataset is still building; abort its job first.")
        try:
            with transaction.atomic():
                dataset.delete()
                if job is not None:
                    jobs.delete(job)
        except ProtectedError as exc:
            raise DatasetInUse(str(exc)) from None


def build_job_products(job: Job, user) -> dict[str, list[tuple[str, str]]]:
    """The job page's link for a build job: the dataset it builds, when ``user`` may see it."""
    from django.urls import reverse

    dataset = Dataset.objects.filter(job_id=job.pk).first()
    if dataset is None or not permissions.can(user, permissions.VIEW, dataset):
        return {"links": [], "downloads": []}
    url = reverse("datasets:detail", args=[dataset.pk])
    return {"links": [(f"Dataset “{dataset.name}”", url)], "downloads": []}
