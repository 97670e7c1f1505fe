"""Creating and deleting datasets."""

from __future__ import annotations

import json
import uuid
from pathlib import PurePath
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import ProtectedError

from apps.core.plugins.catalog import get_data_ingestion
from apps.core.storage import get_store
from apps.datasets.models import Dataset
from apps.jobs import services as jobs


class DatasetInUse(Exception):
    """Models were trained on the dataset; it cannot be deleted (409)."""


UPLOADS_PREFIX = "uploads/"


def store_upload(upload: UploadedFile) -> dict[str, Any]:
    """Put an uploaded file in the artifact store; the job receives this reference.

    Plugins read it in the job process with ``get_store().open(ref["upload_key"])``.
    """
    name = upload.name.replace("/", "_").replace("\\", "_")[:200] or "upload"
    key = f"{UPLOADS_PREFIX}{uuid.uuid4().hex}/{name}"
    upload.seek(0)
    get_store().put_stream(key, upload, length=upload.size)
    return {"upload_key": key, "name": upload.name, "size": upload.size}


class _OptionsEncoder(DjangoJSONEncoder):
    def default(self, o):
        if isinstance(o, PurePath):
            return str(o)
        return super().default(o)


def json_options(cleaned_data: dict[str, Any]) -> dict[str, Any]:
    """Form values as the JSON the job process receives.

    Uploaded files go to the artifact store and become ``{"upload_key", "name",
    "size"}``; paths, decimals and dates become strings.
    """
    values = {
        name: store_upload(value) if isinstance(value, UploadedFile) else value
        for name, value in cleaned_data.items()
    }
    return json.loads(json.dumps(values, cls=_OptionsEncoder))


def upload_keys(options: dict[str, Any]) -> list[str]:
    return [v["upload_key"] for v in options.values() if isinstance(v, dict) and "upload_key" in v]


def discard_uploads(options: dict[str, Any]) -> None:
    """Uploads are inputs of one build: once it has finished they are deleted."""
    store = get_store()
    for key in upload_keys(options):
        store.delete(key)


def create(
    *, owner, type_id: str, options: dict[str, Any], name: str, description: str = "",
    team=None, visibility: str = "private", processes: int = 2, max_error_percent: float = 10,
) -> Dataset:  # fmt: skip
    """Create a dataset in the building state and submit the job that builds it."""
    get_data_ingestion(type_id)  # fail early for an unknown type
    options = json_options(options)
    with transaction.atomic():
        dataset = Dataset.objects.create(
            owner=owner, team=team, visibility=visibility, name=name, description=description,
            type=type_id, options=options,
        )  # fmt: skip
        job = jobs.submit(
            owner=owner, kind="dataset.build", name=f"Build dataset “{name}”", team=team,
            visibility=visibility,
            params={
                "dataset_id": dataset.pk, "type": type_id, "options": options,
                "processes": processes, "max_error_percent": max_error_percent,
            },
        )  # fmt: skip
        dataset.job = job
        dataset.save(update_fields=["job"])
    return dataset


def delete(dataset: Dataset) -> None:
    """Delete the dataset with its build job and shards; refused while models use it."""
    if dataset.models.exists():
        names = ", ".join(dataset.models.values_list("name", flat=True)[:5])
        raise DatasetInUse(f"Models were trained on this dataset ({names}); delete them first.")
    job = dataset.job
    if job is not None and job.is_active:
        raise jobs.JobStateError("The dataset is still building; abort its job first.")
    try:
        with transaction.atomic():
            dataset.delete()
            if job is not None:
                jobs.delete(job)
    except ProtectedError as exc:
        raise DatasetInUse(str(exc)) from None
