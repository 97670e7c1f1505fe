"""Datasets built once per test process and shared read-only.

A worker builds a dataset the first time a test asks for it (the real path: a job, its
shards published to the artifact store). What came out — the dataset's and its build
job's rows, the job's published files — is kept for the rest of the run (the
``built_datasets`` session fixture: one per xdist worker); later tests get a copy of
those rows in their own database and the files under the new job's prefix in the
bucket, without a worker or a build. Only tests that read the dataset share it: a test
that changes a dataset or its build builds its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from apps.core.storage import get_store
from apps.datasets.models import Dataset
from apps.jobs.models import Job, JobArtifact

_NOT_COPIED = {"id", "owner_id", "team_id", "job_id", "cloned_from_id", "created_at", "updated_at"}


@dataclass
class Built:
    dataset: dict
    job: dict
    files: dict[str, bytes] = field(default_factory=dict)  # key under the job's prefix → bytes
    artifacts: list[tuple[str, str, int]] = field(default_factory=list)  # name, key, size


def _values(obj) -> dict:
    return {
        f.attname: getattr(obj, f.attname)
        for f in type(obj)._meta.concrete_fields
        if f.attname not in _NOT_COPIED
    }


def _kept(dataset: Dataset) -> Built:
    store, job, prefix = get_store(), dataset.job, dataset.data_prefix
    return Built(
        dataset=_values(dataset),
        job=_values(job),
        files={key[len(prefix) :]: store.get(key) for key in store.list(prefix)},
        artifacts=[(a.name, a.key[len(prefix) :], a.size) for a in job.artifacts.all()],
    )


def _copied(built: Built, owner, name: str) -> Dataset:
    job = Job.objects.create(**{**built.job, "owner_id": owner.pk})
    dataset = Dataset.objects.create(**{**built.dataset, "owner_id": owner.pk, "job": job})
    job.name = built.job["name"].replace(built.dataset["name"], name)
    job.params = {**job.params, "dataset_id": dataset.pk}
    job.save(update_fields=["name", "params"])
    dataset.name = name
    dataset.save(update_fields=["name"])
    store, prefix = get_store(), dataset.data_prefix
    for key, data in built.files.items():
        store.put(prefix + key, data)
    JobArtifact.objects.bulk_create(
        JobArtifact(job=job, name=artifact, key=prefix + key, size=size)
        for artifact, key, size in built.artifacts
    )
    return dataset


def shared_dataset(
    built_datasets: dict, key, owner, build: Callable[[], Dataset], name: str | None = None
) -> Dataset:
    """``owner``'s ready dataset built by ``build()`` — the first time ``key`` is asked for in
    this test process; a copy of that one afterwards (named ``name``, else as built)."""
    if key not in built_datasets:
        dataset = build()
        assert dataset.status == "ready", dataset.job.error
        built_datasets[key] = _kept(dataset)
        return dataset
    built = built_datasets[key]
    return _copied(built, owner, name or built.dataset["name"])
