"""Creating and deleting datasets."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import ProtectedError

from apps.core.plugins.catalog import get_data_ingestion
from apps.datasets.models import Dataset
from apps.jobs import services as jobs


class DatasetInUse(Exception):
    """Models were trained on the dataset; it cannot be deleted (409)."""


def json_options(cleaned_data: dict[str, Any]) -> dict[str, Any]:
    """Form values as the JSON the job process receives (paths and decimals become strings)."""
    return json.loads(json.dumps(cleaned_data, cls=DjangoJSONEncoder))


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
