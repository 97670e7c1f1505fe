"""A training snapshot is one ``model.keras`` (with ``state.json``) and resumes the weights
and the optimizer state exactly; snapshots written before, with a separate weights file
and ``optimizer.npz``, still resume; an optimizer state of another shape is refused."""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import uuid
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest

from apps.core.storage import get_store
from apps.mlmodels import snapshots

pytestmark = pytest.mark.tensorflow

SHAPE = (16, 16, 1)


def compiled(optimizer: str = "adam"):
    import keras

    from apps.mlmodels import networks

    keras.utils.set_random_seed(3)
    inputs = keras.Input(SHAPE)
    model = keras.Model(inputs, networks.lenet(SHAPE, 10)(inputs))
    choice = (keras.optimizers.Adam(1e-3) if optimizer == "adam"
              else keras.optimizers.SGD(1e-3, momentum=0.9))  # fmt: skip
    model.compile(optimizer=choice, loss="sparse_categorical_crossentropy")
    return model


def trained():
    model = compiled()
    rng = np.random.default_rng(0)
    features = rng.random((24, *SHAPE), dtype=np.float32)
    model.fit(features, rng.integers(0, 10, 24), batch_size=8, epochs=2, verbose=0)
    return model


@pytest.fixture
def trainer(tmp_path_factory, monkeypatch):
    """Makes a Trainer as a training job does. Its work folder (``mkdtemp``: below the job's
    private TMPDIR in a job, removed with it) goes below the test's temporary folders here,
    not into the test process's /tmp."""
    from apps.mlmodels.trainer import Trainer  # TensorFlow: not when the tests are collected

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("trainer")))

    def make():
        ctx = SimpleNamespace(attempt=1, staging_prefix=f"staging/{uuid.uuid4().hex}/", log=print)
        model_id = 10**9 + uuid.uuid4().int % 10**9  # no other test's snapshots
        return Trainer(ctx, params={"model_id": model_id, "solver": {}, "resume": True})

    return make


def members(model_id: int, epoch: int) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(get_store().get(snapshots.key(model_id, epoch)))) as tar:
        return set(tar.getnames())


def assert_same_state(a, b) -> None:
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))
    assert len(a.optimizer.variables) == len(b.optimizer.variables)
    for x, y in zip(a.optimizer.variables, b.optimizer.variables, strict=True):
        assert np.array_equal(x.numpy(), y.numpy()), x.path


def test_a_snapshot_is_one_model_file_and_resumes_weights_and_optimizer(trainer):
    job, model = trainer(), trained()
    job.snapshot(model, 2, {"loss": 1.0}, [{"epoch": 1}, {"epoch": 2}])
    assert members(job.model_id, 2) == {"model.keras", "state.json"}

    again = compiled()
    epoch, history = job.restore(again)

    assert (epoch, history) == (2, [{"epoch": 1}, {"epoch": 2}])
    assert int(again.optimizer.iterations.numpy()) == 6  # 2 epochs of 3 steps
    assert_same_state(model, again)
    snapshots.delete_all(job.model_id)


def test_an_older_snapshot_with_its_weights_and_optimizer_beside_still_resumes(tmp_path, trainer):
    job, model = trainer(), trained()
    model.save(tmp_path / "model.keras")
    model.save_weights(tmp_path / "model.weights.h5")
    variables = {f"v{i}": v.numpy() for i, v in enumerate(model.optimizer.variables)}
    np.savez(tmp_path / "optimizer.npz", **variables)
    (tmp_path / "state.json").write_text(json.dumps({"epoch": 2, "iterations": 6}))
    snapshots.save(job.model_id, 2, tmp_path, job.ctx.staging_prefix)

    again = compiled()
    assert job.restore(again)[0] == 2

    assert_same_state(model, again)
    snapshots.delete_all(job.model_id)


def test_a_snapshot_of_another_optimizer_does_not_resume(trainer):
    job = trainer()
    job.snapshot(trained(), 2, {}, [])

    with pytest.raises(RuntimeError, match="optimizer state does not match"):
        job.restore(compiled("momentum"))
    snapshots.delete_all(job.model_id)


def test_the_weights_file_comes_out_of_model_keras(tmp_path):
    model = trained()
    model.save(tmp_path / "model.keras")

    path = snapshots.weights_file(tmp_path)

    again = compiled()
    again.optimizer.build(again.trainable_variables)
    again.load_weights(path)
    assert_same_state(model, again)
    assert snapshots.weights_file(tmp_path) == path  # there now: used as it is


def test_a_compressed_weights_member_is_refused(tmp_path):
    # What Keras writes is stored; a job's own code could write a compressed one (a bomb).
    with zipfile.ZipFile(tmp_path / "model.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr(snapshots.WEIGHTS, b"\0" * 1_000_000)

    with pytest.raises(ValueError, match="not as a training job writes it"):
        snapshots.weights_file(tmp_path)
    assert not (tmp_path / snapshots.WEIGHTS).exists()


@pytest.mark.parametrize("damage", ["compressed weights", "no model.keras"])
def test_the_inference_host_answers_a_snapshot_it_cannot_unpack_with_a_clear_error(
    tmp_path, damage, trainer
):
    from apps.inference.host import fetch
    from apps.inference.service import InferenceError

    job = trainer()
    folder = tmp_path / "snapshot"
    folder.mkdir()
    if damage == "compressed weights":
        with zipfile.ZipFile(folder / "model.keras", "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(snapshots.WEIGHTS, b"\0" * 1_000)
    (folder / "state.json").write_text(json.dumps({"epoch": 1, "iterations": 1}))
    snapshots.save(job.model_id, 1, folder, job.ctx.staging_prefix)
    request = {"model_id": job.model_id, "epoch": 1, "dataset": {"id": 1, "prefix": "x"},
               "spec": {"network": {"source": "custom"}}}  # fmt: skip

    with pytest.raises(InferenceError, match="snapshot of epoch 1 cannot be loaded") as caught:
        fetch(request, tmp_path / "load")
    assert caught.value.status == 422
    snapshots.delete_all(job.model_id)
