"""A real training's snapshots take its owner's storage: the job's bytes written are the
sizes the store holds, a storage quota they fill refuses the next job, and deleting the
model frees them (ADR 0020). The ledger's other cases, without TensorFlow:
tests/usage/test_stored_objects.py."""

import pytest

from apps.core.storage import get_store
from apps.jobs.models import JobArtifact
from apps.mlmodels import snapshots
from apps.usage.models import JobUsage, Quota
from tests.mlmodels.helpers import create_model, finished
from tests.usage.test_quotas import post_check

pytestmark = [pytest.mark.tensorflow, pytest.mark.timeout(900)]


def test_a_trainings_snapshots_are_its_bytes_written_and_fill_the_storage_quota(
    api, people, digits_dataset
):
    dataset = digits_dataset(size=16, per_class=40, name="small")
    created = create_model(api, dataset, "stored", epochs=2, batch_size=16, snapshot_interval=1)
    model = finished(created["id"])
    assert model.status == "ready", model.job.error
    store = get_store()
    assert snapshots.epochs(model.pk) == [1, 2]
    held = sum(store.size(snapshots.key(model.pk, epoch)) for epoch in (1, 2))
    artifacts = sum(a.size for a in model.job.artifacts.all())
    assert held > 0
    assert JobUsage.objects.get(job=model.job).bytes_written == held + artifacts

    # The owner's storage: the artifacts of their jobs (the dataset's build too) and the
    # snapshots.
    jobs_artifacts = JobArtifact.objects.filter(job__owner=people.owner)
    used = held + sum(jobs_artifacts.values_list("size", flat=True))
    Quota.objects.create(user=people.owner, storage_bytes=used)
    refused = post_check(api)
    assert refused.status_code == 429, refused.content
    assert (refused.json()["quota"], refused.json()["used"]) == ("storage_bytes", used)

    assert api.delete(f"/api/v1/models/{model.pk}/").status_code == 204
    assert snapshots.epochs(model.pk) == []
    assert post_check(api).status_code == 201
