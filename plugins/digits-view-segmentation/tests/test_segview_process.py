"""The image-segmentation view on real arrays: masks, colours, pixel counts, Dice and IoU."""

import base64
import io

import numpy as np
import pytest
from digits_view_segmentation.forms import SegmentationViewForm
from digits_view_segmentation.view import MAX_SIDE, ImageSegmentationView
from django.template.loader import render_to_string
from PIL import Image

from apps.datasets.models import Dataset

RED = (230, 25, 75)  # the Sunnybrook palette's left ventricle


def decoded(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def ellipse(shape, centre, radii) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    inside = ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 <= 1
    return inside.astype(np.uint8)


def softmax_of(mask: np.ndarray, classes: int = 2) -> np.ndarray:
    """A per-pixel softmax (H, W, classes) whose argmax is ``mask``."""
    logits = np.where(np.arange(classes) == mask[..., None], 3.0, 0.0)
    exp = np.exp(logits)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture
def view():
    dataset = Dataset(
        type="image-sunnybrook",
        options={},
        manifest={"label_names": ["background", "left ventricle"]},
    )
    return ImageSegmentationView(dataset=dataset, opacity=30)


@pytest.fixture
def scan():
    rows, cols = np.mgrid[:48, :64]
    return ((rows * 3 + cols * 2) % 256).astype(np.uint8)[..., None]


def test_dice_and_iou_are_those_of_numpy(view, scan):
    predicted = ellipse((48, 64), (22, 30), (10, 14))
    truth = ellipse((48, 64), (25, 33), (11, 12))
    data = view.process_data("IM-0001-0048.dcm", scan, {"output": softmax_of(predicted)}, truth)

    p, t = predicted == 1, truth == 1
    inter, union = np.logical_and(p, t).sum(), np.logical_or(p, t).sum()
    dice, iou = 2 * inter / (p.sum() + t.sum()), inter / union
    assert 0.3 < dice < 0.95  # the two ellipses overlap, not entirely
    ventricle = data["classes"][1]
    assert ventricle["name"] == "left ventricle"
    assert ventricle["dice"] == pytest.approx(dice) and ventricle["iou"] == pytest.approx(iou)
    assert data["dice"] == pytest.approx(dice) and data["iou"] == pytest.approx(iou)
    assert ventricle["pixels"] == p.sum() and data["classes"][0]["pixels"] == (~p).sum()
    assert data["has_ground_truth"]
    assert (decoded(data["truth"])[t] == RED).all()


def test_the_mask_layer_is_the_predicted_mask_in_the_class_colour(view, scan):
    predicted = ellipse((48, 64), (20, 20), (8, 9))
    data = view.process_data("slice", scan, {"output": softmax_of(predicted)})
    layer = decoded(data["mask_layer"])
    assert layer.shape == (48, 64, 4)
    assert (layer[predicted == 1] == (*RED, 255)).all()
    assert (layer[predicted == 0][:, 3] == 0).all()  # background transparent over the scan
    alone = decoded(data["mask_alone"])
    assert (alone[predicted == 1] == RED).all() and (alone[predicted == 0] == 0).all()
    image = decoded(data["image"])
    assert (image[..., 0] == scan[..., 0]).all()
    assert data["opacity"] == 30 and not data["has_ground_truth"] and "dice" not in data


def test_the_task_s_mask_is_used_when_given(view, scan):
    mask = ellipse((48, 64), (10, 10), (5, 5))
    output = softmax_of(np.zeros_like(mask))  # would say: no ventricle at all
    data = view.process_data("slice", scan, {"output": output, "mask": mask})
    assert data["classes"][1]["pixels"] == mask.sum()


def test_large_inputs_are_shown_smaller_and_scored_on_every_pixel(view):
    side = MAX_SIDE * 2
    scan = np.zeros((side, side, 1), np.uint8)
    predicted = ellipse((side, side), (900, 900), (300, 300))
    truth = ellipse((side, side), (900, 920), (300, 300))
    data = view.process_data("big", scan, {"mask": predicted}, truth)
    assert decoded(data["image"]).shape[:2] == (MAX_SIDE, MAX_SIDE)
    assert decoded(data["mask_layer"]).shape[:2] == (MAX_SIDE, MAX_SIDE)
    p, t = predicted == 1, truth == 1
    assert data["dice"] == pytest.approx(2 * (p & t).sum() / (p.sum() + t.sum()))


def test_the_templates_show_overlay_slider_legend_and_scores(view, scan):
    truth = ellipse((48, 64), (25, 33), (11, 12))
    data = view.process_data("IM-0001-0048.dcm", scan, {"mask": truth}, truth)
    name, context = view.get_view_template(data)
    html = render_to_string(name, context)
    assert 'class="seg-mask-layer"' in html and 'data-opacity="30"' in html
    assert 'type="range"' in html and 'value="30"' in html
    assert '<th data-role="dice">1.000</th>' in html and '<td class="seg-iou">1.000</td>' in html
    name, context = view.get_header_template()
    header = render_to_string(name, context)
    assert "left ventricle" in header and 'data-colour="#e6194b"' in header
    assert "digits_view_segmentation/segmentation.js" in header


def test_the_config_form_bounds_the_opacity():
    form = SegmentationViewForm({"opacity": "140"})
    assert not form.is_valid() and "opacity" in form.errors
    form = SegmentationViewForm({})
    assert form.is_valid() and form.cleaned_data == {"opacity": 50}
