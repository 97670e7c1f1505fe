import pytest

from apps.core.storage import get_store
from apps.datasets import services, shards
from apps.datasets.models import Dataset
from tests.conftest import wait_until


def build(user, processes=2, **options):
    return services.create(
        owner=user, type_id="test-squares", name="squares", processes=processes,
        options={"count": 20, "size": 16, "include_bad": False, **options},
    )  # fmt: skip


def finished(dataset):
    return wait_until(
        lambda: Dataset.objects.exclude(status="building").filter(pk=dataset.pk).first(),
        timeout=60,
    )


@pytest.mark.parametrize("processes", [1, 2])
def test_dataset_is_built_into_shards_with_a_manifest(people, start_worker, processes):
    start_worker()
    dataset = finished(build(people.owner, processes=processes, include_bad=True))
    assert dataset.status == "ready", dataset.job.error
    manifest = dataset.manifest
    assert {s: v["count"] for s, v in manifest["stages"].items()} == {
        "train": 16,
        "val": 4,
        "test": 0,
    }
    assert manifest["feature"] == {"shape": [16, 16, 1], "dtype": "uint8", "layout": "HWC"}
    assert manifest["label_names"] == ["even", "odd"]
    assert manifest["error_count"] == 1 and "13000.png" in manifest["errors"][0]["error"]
    features, label = shards.read_entry(dataset, "train", 5)
    assert label == 1 and features[:6, :6].min() == 255 and features[6:, 6:].max() == 0
    keys = set(get_store().list(dataset.data_prefix))
    assert dataset.data_prefix + "manifest.json" in keys


def test_too_many_bad_entries_fail_the_build_and_publish_nothing(people, start_worker):
    start_worker()
    dataset = services.create(
        owner=people.owner, type_id="test-squares", name="bad", max_error_percent=0,
        options={"count": 5, "size": 8, "include_bad": True},
    )  # fmt: skip
    dataset = finished(dataset)
    assert dataset.status == "error"
    assert "more than the allowed 0 %" in dataset.job.error
    assert list(get_store().list(dataset.data_prefix)) == []
