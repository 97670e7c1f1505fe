"""Task types: a dataset's task decides its networks, options, figures and answers.

The request checks need no training (the datasets are rows that look built); the
figures are checked against their definitions computed with NumPy, and the Keras
metric against the same (``tensorflow`` mark).
"""

import numpy as np
import pytest

from apps.jobs.models import Job
from apps.mlmodels import tasks
from apps.mlmodels.models import TrainedModel
from tests.mlmodels.test_errors import post, ready_dataset

SEGMENTATION_MANIFEST = {
    "task": "segmentation", "label": {"kind": "mask", "shape": [8, 8]},
    "label_names": ["background", "left ventricle"],
    "stages": {"train": {"count": 8}, "val": {"count": 2}},
    "feature": {"shape": [8, 8, 1], "dtype": "uint8"},
}  # fmt: skip


def segmentation_dataset(owner, name="ventricles", **manifest):
    return ready_dataset(
        owner, name, type="image-sunnybrook", manifest={**SEGMENTATION_MANIFEST, **manifest}
    )


def test_the_task_comes_from_the_manifest_or_its_labels():
    assert tasks.task_of({"task": "segmentation"}).name == "segmentation"
    assert tasks.task_of({"label": {"kind": "mask"}}).name == "segmentation"
    assert tasks.task_of({"label": {"kind": "class"}}).name == "classification"
    assert tasks.task_of({}).name == "classification"
    detection = tasks.task_of({"task": "detection"})
    assert detection.name == "detection" and not detection.trains
    with pytest.raises(tasks.TaskError, match="“detection” cannot be trained yet"):
        tasks.check_trainable(detection)


def numpy_figures(truth, predicted, classes):
    figures = {}
    for c in range(classes):
        t, p = truth == c, predicted == c
        both, either = (t & p).sum(), (t | p).sum()
        figures[f"iou_{c}"] = both / either if either else np.nan
        figures[f"dice_{c}"] = 2 * both / (t.sum() + p.sum()) if either else np.nan
    figures["mean_iou"] = np.nanmean([figures[f"iou_{c}"] for c in range(classes)])
    figures["dice"] = np.nanmean([figures[f"dice_{c}"] for c in range(1, classes)])
    figures["pixel_accuracy"] = (truth == predicted).mean()
    return figures


def confusion(truth, predicted, classes):
    return np.bincount(truth.ravel() * classes + predicted.ravel(), minlength=classes**2)


@pytest.mark.parametrize("classes", [2, 4])
def test_dice_and_iou_are_their_definitions(classes):
    rng = np.random.default_rng(classes)
    truth = rng.integers(0, classes, (3, 16, 16))
    predicted = np.where(
        rng.random(truth.shape) < 0.7, truth, rng.integers(0, classes, truth.shape)
    )
    predicted[predicted == classes - 1] = 0  # the last class is never predicted
    figures = tasks.confusion_figures(confusion(truth, predicted, classes))
    for key, value in numpy_figures(truth, predicted, classes).items():
        assert figures[key] == pytest.approx(value), key
    assert figures[f"dice_{classes - 1}"] == 0.0


def test_a_class_absent_from_truth_and_prediction_is_left_out_of_the_means():
    truth = np.array([[0, 0, 1, 1]])
    figures = tasks.confusion_figures(confusion(truth, truth, 3))
    assert figures["dice"] == figures["mean_iou"] == 1.0 and np.isnan(figures["dice_2"])
    row = tasks.get("segmentation").epoch_row(
        {"loss": 0.5, "confusion": confusion(truth, truth, 3)}
    )
    assert "dice_2" not in row and row["dice"] == 1.0  # a result is JSON: no NaN


@pytest.mark.tensorflow
def test_the_keras_metric_counts_what_numpy_counts():
    from apps.mlmodels.segmentation import ConfusionMatrix

    rng = np.random.default_rng(0)
    metric = ConfusionMatrix(3)
    expected = np.zeros(9, np.int64)
    for _ in range(3):
        truth = rng.integers(0, 3, (4, 8, 8)).astype(np.uint8)
        scores = rng.random((4, 8, 8, 3)).astype(np.float32)
        metric.update_state(truth, scores)
        expected += confusion(truth.astype(np.int64), scores.argmax(-1), 3)
    assert (np.asarray(metric.result()) == expected).all()


def test_postprocess_answers_per_task():
    classification = tasks.get("classification").postprocess(
        np.array([0.1, 0.7, 0.2]), top_n=2, label_names=["a", "b", "c"]
    )
    assert classification == {"predictions": [
        {"index": 1, "label": "b", "probability": 0.7},
        {"index": 2, "label": "c", "probability": pytest.approx(0.2)},
    ]}  # fmt: skip
    scores = np.zeros((2, 3, 2))
    scores[..., 0], scores[0, :2, 1] = 0.6, 0.9
    answer = tasks.get("segmentation").postprocess(scores, label_names=["bg", "lv"])
    assert answer["mask"].dtype == np.uint8 and answer["mask"].tolist() == [[1, 1, 0], [0, 0, 0]]
    assert answer["pixel_counts"] == {"bg": 4, "lv": 2}


# --- what a request may ask, by task ------------------------------------------------------
UNET = {"source": "standard", "name": "unet"}


def messages(errors) -> list[str]:
    """The messages of DRF's errors of a field (a list item's are keyed by its index)."""
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in messages(value)]
    return [str(m) for m in errors]


@pytest.mark.parametrize(
    ("solver", "field", "words"),
    [
        ({"class_weights": [1, 2, 3]}, "class_weights", "one class weight per class: 2"),
        ({"class_weights": "1, -2"}, "class_weights", "cannot be negative"),
        ({"class_weights": [0, 0]}, "class_weights", "at least one class weight"),
        ({"class_weights": "1, heavy"}, "class_weights", "numbers separated by commas"),
        ({"dice_loss": -1}, "dice_loss", "greater than or equal to 0"),
    ],
)
def test_bad_segmentation_options_are_refused_naming_the_field(api, people, solver, field, words):
    reply = post(api, segmentation_dataset(people.owner), solver=solver, network=UNET)
    assert reply.status_code == 400, reply.content
    errors = reply.json()["solver"]
    assert set(errors) == {field}, errors
    assert words in " ".join(messages(errors[field])).lower().replace("“", "").replace("”", "")
    assert not TrainedModel.objects.exists() and not Job.objects.exists()


def test_options_and_networks_of_another_task_are_refused(api, people):
    classes, masks = ready_dataset(people.owner), segmentation_dataset(people.owner)
    reply = post(api, classes, solver={"dice_loss": 0.5})
    assert reply.status_code == 400
    assert "segmentation datasets only" in reply.json()["solver"]["dice_loss"][0]
    reply = post(api, classes, solver={"class_weights": [1, 2]})
    assert "class_weights" in reply.json()["solver"]
    reply = post(api, masks)  # lenet
    assert reply.status_code == 400
    assert "lenet is not a segmentation network" in reply.json()["network"]["name"][0]
    reply = post(api, classes, network=UNET)
    assert "unet is not a classification network" in reply.json()["network"]["name"][0]
    detection = ready_dataset(people.owner, "boxes", manifest={"task": "detection"})
    [message] = post(api, detection).json()["dataset"]
    assert "“detection” cannot be trained yet" in message
    assert not TrainedModel.objects.exists() and not Job.objects.exists()


def test_a_segmentation_model_takes_its_tasks_options_and_default_network(api, people):
    masks = segmentation_dataset(people.owner)
    reply = post(api, masks, solver={"class_weights": "1, 20", "dice_loss": 0.5},
                 network={"source": "standard"})  # fmt: skip
    assert reply.status_code == 201, reply.content
    [model] = reply.json()["models"]
    assert model["network"]["name"] == "unet"
    assert model["solver"]["class_weights"] == [1.0, 20.0] and model["solver"]["dice_loss"] == 0.5
    # Fine-tuning needs an earlier model of the same task.
    earlier = TrainedModel.objects.create(
        owner=people.owner, name="classifier", dataset=ready_dataset(people.owner, "digits")
    )
    reply = post(api, masks, network={"source": "previous", "previous_model": earlier.pk})
    assert reply.status_code == 400
    assert "another task" in reply.json()["network"]["previous_model"][0]


def test_the_new_model_page_offers_each_tasks_networks_and_options(client, people):
    masks = segmentation_dataset(people.owner)
    client.force_login(people.owner)
    page = client.get("/models/new/").content.decode()
    assert '<optgroup label="Segmentation">' in page and 'value="unet"' in page
    assert f'"{masks.pk}": "segmentation"' in page and 'name="class_weights"' in page
    form = {
        "dataset": masks.pk, "name": "page unet", "visibility": "private",
        "network_source": "standard", "standard_network": "lenet", "epochs": 2,
        "batch_size": "8", "base_lr": "0.01", "policy": "fixed", "step_size": 33,
        "gamma": 0.1, "power": 1, "optimizer": "adam", "momentum": 0.9, "weight_decay": 0,
        "val_interval": 1, "snapshot_interval": 1, "mean_subtraction": "none",
        "rotation_degrees": 0, "crop_percent": 0, "noise_stddev": 0, "contrast": 0, "hue": 0,
        "gpu_mode": "none", "gpu_count": 1, "class_weights": "1, 2, 3", "dice_loss": 0,
    }  # fmt: skip
    page = client.post("/models/new/", form).content.decode()
    assert "lenet is not a segmentation network" in page
    page = client.post("/models/new/", {**form, "standard_network": ""}).content.decode()
    assert "Give one class weight per class: 2 (background, left ventricle), not 3." in page
    reply = client.post("/models/new/", {**form, "standard_network": "", "class_weights": "1,9"})
    assert reply.status_code == 302, reply.content.decode()[-2000:]
    model = TrainedModel.objects.get(name="page unet")
    assert model.network["name"] == "unet" and model.solver["class_weights"] == [1.0, 9.0]


@pytest.mark.tensorflow
def test_geometric_augmentation_moves_image_and_mask_together():
    import tensorflow as tf

    from apps.mlmodels.segmentation import joint_augmentation

    augment = joint_augmentation(
        {"flip_horizontal": True, "flip_vertical": True, "rotation_degrees": 30, "crop_percent": 30}
    )
    mask = np.zeros((32, 32), np.uint8)
    mask[4:14, 6:24] = 1
    image = (mask * 200.0)[..., None].astype(np.float32)
    changed = 0
    for draw in range(8):
        out_image, out_mask = augment(tf.constant(image), tf.constant(mask), tf.constant([draw, 7]))
        out_image, out_mask = out_image.numpy()[..., 0], out_mask.numpy()
        assert out_mask.dtype == np.uint8 and set(np.unique(out_mask)) <= {0, 1}
        # Bilinear (image) and nearest (mask) differ at most along the edges.
        assert ((out_image > 100) == (out_mask == 1)).mean() > 0.97
        changed += not (out_mask == mask).all()
    assert changed >= 6
    assert joint_augmentation({"contrast": 0.5, "noise_stddev": 3}) is None  # image only


# --- the model pages of a segmentation model ------------------------------------------------
def seg_rows(*figures):
    """Epoch rows as the segmentation task writes them: ``(loss, val_loss, val_dice)``."""
    return [
        {"epoch": n, "loss": loss, "pixel_accuracy": 0.9, "dice": 0.5, "val_loss": vloss,
         "val_pixel_accuracy": 0.95, "val_mean_iou": vdice - 0.1, "val_dice": vdice,
         "val_dice_0": 0.99, "val_dice_1": vdice}
        for n, (loss, vloss, vdice) in enumerate(figures, start=1)
    ]  # fmt: skip


def seg_model(owner, dataset, name, rows, best):
    return TrainedModel.objects.create(
        owner=owner, dataset=dataset, name=name, status="ready", network=UNET,
        solver={"epochs": len(rows), "batch_size": 8, "base_lr": 0.01},
        result={"epochs": rows, "task": "segmentation"}, best_epoch=best,
    )  # fmt: skip


def test_segmentation_models_show_and_compare_by_dice(client, people):
    masks = segmentation_dataset(people.owner)
    good = seg_model(people.owner, masks, "good", seg_rows((0.5, 0.6, 0.7), (0.3, 0.4, 0.91)), 2)
    fair = seg_model(people.owner, masks, "fair", seg_rows((0.5, 0.5, 0.8)), 1)
    client.force_login(people.owner)
    page = client.get(f"/models/{good.pk}/").content.decode()
    assert "<th>Val Dice left ventricle</th>" in page and "<td>0.9100</td>" in page
    assert "best epoch (Validation Dice)" in page and "Segmentation" in page
    page = client.get("/models/", {"sort": "val_dice"}).content.decode()
    assert page.index(">good</a>") < page.index(">fair</a>")
    assert '<td class="text-end" data-role="val_dice">0.9100</td>' in page
    page = client.get("/models/compare/", {"id": [fair.pk, good.pk]}).content.decode()
    assert 'title="best validation score"' in page.split(">good</a>")[0].rsplit("<tr", 1)[1]
    assert 'data-curve="val_dice"' in page and 'data-curve="val_accuracy"' not in page


@pytest.mark.tensorflow
def test_segmentation_networks_give_a_softmax_per_pixel_and_wrong_ones_are_named():
    from apps.mlmodels import networks

    task = tasks.get("segmentation")
    for name, shape in (("unet", (64, 48, 1)), ("fcn_alexnet", (70, 45, 3))):
        model = networks.standard(name, shape, 3)
        task.check_output(model, shape, 3)  # (None, H, W, 3)
        scores = model(np.zeros((1, *shape), np.float32)).numpy()
        assert np.allclose(scores.sum(axis=-1), 1, atol=1e-5), name
    with pytest.raises(networks.NetworkError, match="divisible by 8; the images are 60×60"):
        networks.standard("unet", (60, 60, 1), 2)
    code = "import keras\n\ndef build_model(input_shape, num_classes):\n" \
           "    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),\n" \
           "                             keras.layers.Dense(num_classes, activation='softmax')])\n"  # fmt: skip
    check = lambda model: task.check_output(model, (8, 8, 1), 2)  # noqa: E731
    with pytest.raises(networks.NetworkError, match=r"\(None, 2\); it must be \(None, 8, 8, 2\)"):
        networks.custom(code, (8, 8, 1), 2, check)
