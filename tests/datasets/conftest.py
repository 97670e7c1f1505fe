"""Fixtures of the dataset tests: built datasets to look at."""

import numpy as np
import pytest

from apps.core.storage import get_store
from apps.datasets import shards
from apps.datasets.models import Dataset
from apps.jobs.models import Job
from tests.builds import shared_dataset
from tests.datasets.test_build import build, finished


@pytest.fixture
def fresh_cache(settings, tmp_path):
    """Local copies of shards are cached by dataset id; ids repeat between test databases."""
    settings.DATA_DIR = tmp_path


@pytest.fixture
def squares(people, start_worker, fresh_cache, built_datasets):
    """A ready dataset of 16×16 PNG squares with a mean image: train 8 even + 8 odd, val 2 + 2.

    Built by a worker once per test process, copied for the tests after (read-only).
    """

    def built():
        start_worker()
        return finished(build(people.owner, processes=1, encoding="png", mean_image=True))

    return shared_dataset(built_datasets, "squares", people.owner, built)


@pytest.fixture
def masks(people, fresh_cache):
    """A ready dataset with segmentation masks, its shards written here (no worker)."""
    job = Job.objects.create(owner=people.owner, name="masks", kind="dataset.build", status="done")
    prefix = f"jobs/{job.pk}/"
    writer = shards.StageWriter(get_store(), prefix, "train", 4, None)
    for i in range(6):
        features = np.full((8, 10, 1), 20 * i, np.uint8)
        mask = np.zeros((8, 10), np.uint8)
        mask[: i + 1, : i + 1] = 1
        writer.add(features, mask)
    writer.flush()
    manifest = {
        "format": shards.NPY_FORMAT, "encoding": None, "type": "test-squares",
        "feature": {"shape": [8, 10, 1], "dtype": "uint8", "layout": "HWC"},
        "label": {"kind": "mask", "shape": [8, 10], "dtype": "uint8"},
        "shard_size": 4, "stages": {"train": writer.summary(), "val": {"count": 0, "shards": []},
        "test": {"count": 0, "shards": []}}, "error_count": 0, "errors": [],
    }  # fmt: skip
    return Dataset.objects.create(
        owner=people.owner, name="masks", type="test-squares", status="ready", job=job,
        manifest=manifest, options={"count": 6, "size": 8},
    )  # fmt: skip
