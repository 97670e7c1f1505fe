import numpy as np
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


def test_an_aborted_build_leaves_an_aborted_dataset_not_a_failed_one(people, client):
    from apps.jobs.services import request_abort

    dataset = services.create(
        owner=people.owner, type_id="test-squares", name="stopped", options={"count": 4, "size": 8}
    )
    request_abort(dataset.job)  # still queued (no worker): it stops at once
    dataset.refresh_from_db()
    assert (dataset.status, dataset.job.status) == ("aborted", "aborted")
    client.force_login(people.owner)
    assert b"Aborted" in client.get(f"/datasets/{dataset.pk}/").content
    assert list(get_store().list(dataset.data_prefix)) == []


@pytest.mark.tensorflow
@pytest.mark.parametrize("encoding", ["png", "none"])
def test_image_datasets_are_tfrecord_shards_tensorflow_reads(people, start_worker, encoding):
    import tensorflow as tf

    start_worker()
    dataset = finished(build(people.owner, encoding=encoding, mean_image=True))
    assert dataset.status == "ready", dataset.job.error
    manifest = dataset.manifest
    assert manifest["format"] == "digits-tfrecord/1" and manifest["encoding"] == encoding
    assert manifest["stages"]["train"]["class_counts"] == {"0": 8, "1": 8}
    # The platform's own reader and TensorFlow's agree on every record.
    shard = manifest["stages"]["train"]["shards"][0]
    path = shards.local_copy(dataset, shard["images"])
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    assert len(records) == 16
    features, label = shards.read_entry(dataset, "train", 3)
    expected = shards.decode_image(records[3], encoding, [16, 16, 1], "uint8")
    assert np.array_equal(features, expected) and label == 1
    assert features[:4, :4].min() == 255 and features[4:, 4:].max() == 0
    mean = np.load(shards.local_copy(dataset, "mean.npy"))
    train = [shards.read_entry(dataset, "train", i)[0] for i in range(16)]
    assert np.allclose(mean, np.mean(train, axis=0), atol=1e-4)


def test_a_killed_build_leaves_no_encoding_process_and_no_working_folder(people, start_worker):
    """The pool dies with its job process; the attempt's private folder is removed."""
    import os
    import signal
    from pathlib import Path

    import psutil
    from django.conf import settings

    worker = start_worker()
    build(people.owner, processes=2, count=10_000, size=256, encoding="png")

    def pool():
        for proc in worker.job_processes():
            try:
                if len(proc.children()) >= 2:
                    return proc, proc.children()
            except psutil.NoSuchProcess:
                pass
        return None

    job_process, encoders = wait_until(pool, timeout=60, interval=0.05)
    folder = Path(job_process.cwd()) if os.geteuid() == 0 else None
    os.kill(job_process.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(encoders, timeout=10)
    assert alive == [], alive
    if folder is not None:  # the worker removes the attempt's folder once the process is gone
        assert folder.is_relative_to(settings.DIGITS_JOB_WORK_ROOT) or "digits-jobs" in str(folder)
        wait_until(lambda: not folder.exists(), timeout=10)
