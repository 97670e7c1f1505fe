"""Testing a segmentation model through a real inference server: a U-Net snapshot (seeded
random weights, saved as a training job saves one) answers for a record of the dataset's
validation stage, picked with the Sunnybrook inference form (a ``DatasetRecord`` entry,
read from the dataset's shard). What the page and the API show is compared with what Keras
computes on the same snapshot, and Dice with a NumPy computation against the record's mask.
"""

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from apps.core.storage import get_store
from apps.datasets.models import Dataset
from apps.datasets.shards import NPY_FORMAT
from apps.jobs.models import Job
from apps.mlmodels.models import TrainedModel
from tests.inference.helpers import save_snapshot

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

SHAPE = (32, 32, 1)
NAMES = ["background", "left ventricle"]


def val_entries():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    masks = np.stack(
        [(((xx - 12 - i) / 6) ** 2 + ((yy - 15) / 5) ** 2 <= 1).astype(np.uint8) for i in range(3)]
    )
    features = rng.integers(0, 80, (3, *SHAPE), dtype=np.uint8)
    features[masks == 1] = 220
    return features, masks


def seg_dataset(owner) -> Dataset:
    build = Job.objects.create(owner=owner, kind="dataset.build", name="build", status="done")
    features, masks = val_entries()
    manifest = {
        "format": NPY_FORMAT, "shard_size": 100, "task": "segmentation",
        "label": {"kind": "mask", "shape": list(SHAPE[:2])}, "label_names": NAMES,
        "feature": {"shape": list(SHAPE), "dtype": "uint8"},
        "stages": {"val": {"count": 3, "shards": [
            {"features": "val/features-0.npy", "labels": "val/labels-0.npy"}]}},
    }  # fmt: skip
    for key, array in (("val/features-0.npy", features), ("val/labels-0.npy", masks)):
        out = io.BytesIO()
        np.save(out, array)
        get_store().put(f"jobs/{build.pk}/{key}", out.getvalue())
    return Dataset.objects.create(
        owner=owner, status="ready", name="lv", type="image-sunnybrook", manifest=manifest,
        job=build, options={"channel_conversion": "L"},
    )  # fmt: skip


def unet_snapshot(model_id: int):
    import keras

    from apps.mlmodels import networks
    from apps.mlmodels.trainer import preprocessing_layer

    keras.utils.set_random_seed(5)
    inputs = keras.Input(SHAPE, name="image")
    core = networks.standard("unet", SHAPE, len(NAMES))
    model = keras.Model(inputs, core(preprocessing_layer("none", None)(inputs)), name=core.name)
    save_snapshot(model_id, 1, model)
    return model


@pytest.fixture
def seg_model(people):
    train = Job.objects.create(owner=people.owner, kind="model.train", name="t", status="done")
    model = TrainedModel.objects.create(
        owner=people.owner, name="unet", dataset=seg_dataset(people.owner), status="ready",
        job=train, network={"source": "standard", "name": "unet"},
        solver={"mean_subtraction": "none", "epochs": 1, "batch_size": 2}, best_epoch=1,
    )  # fmt: skip
    return model, unet_snapshot(model.pk)


def test_a_validation_record_through_the_warm_model(
    client,
    api_client,
    people,
    seg_model,
    inference_server,
):
    model, network = seg_model
    features, masks = val_entries()
    expected = np.argmax(network.predict(features[1:2].astype(np.float32), verbose=0)[0], -1)
    truth = masks[1] == 1
    predicted = expected == 1
    inter = (predicted & truth).sum()
    dice = 2 * inter / (predicted.sum() + truth.sum()) if predicted.sum() + truth.sum() else None

    client.force_login(people.owner)
    page = client.post(
        f"/models/{model.pk}/test/", {"validation_record": "1", "view": "image-segmentation"}
    ).content.decode()
    assert "Result (epoch 1)" in page and 'class="seg-mask-layer"' in page
    row = re.search(r'data-class="1">\s*<td>.*?</td>\s*<td>(\d+)</td>', page, re.S)
    assert int(row.group(1)) == predicted.sum()
    shown = re.search(r'<th data-role="dice">(.*?)</th>', page).group(1)
    assert shown == ("—" if dice is None else f"{dice:.3f}")

    reply = api_client.as_user(people.owner).post(
        f"/api/v1/models/{model.pk}/infer/", {"validation_record": 1}, format="multipart"
    )
    assert reply.status_code == 200, reply.content
    [result] = reply.json()["results"]
    assert result["input"] == "val entry 1"
    png = base64.b64decode(result["mask"].removeprefix("data:image/png;base64,"))
    assert (np.asarray(Image.open(io.BytesIO(png))) == expected).all()
    assert result["scores"][0]["dice"] == (None if dice is None else pytest.approx(dice))
    assert result["scores"][0]["true_pixels"] == truth.sum()

    missing = api_client.post(
        f"/api/v1/models/{model.pk}/infer/", {"validation_record": 9}, format="multipart"
    )
    assert missing.status_code == 400 and list(missing.json()) == ["non_field_errors"]
