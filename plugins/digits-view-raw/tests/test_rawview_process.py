"""The raw-output view on real arrays: values, labels, heatmaps, and its bounds."""

import base64
import io

import numpy as np
import pytest
from digits_view_raw.view import COLOURMAP, HEATMAP_SIDE, MAX_CHANNELS, MAX_ROWS, RawOutputView
from django.template.loader import render_to_string
from PIL import Image

from apps.datasets.models import Dataset


def decoded(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_a_classifier_s_probabilities_are_listed_by_class_name():
    dataset = Dataset(type="x", manifest={"label_names": ["cat", "dog", "bird"]})
    view = RawOutputView(dataset=dataset, digits=3)
    probabilities = np.array([0.125, 0.75, 0.125], np.float32)
    data = view.process_data("a.png", np.zeros((8, 8, 3), np.uint8), {"output": probabilities})
    [array] = data["arrays"]
    assert array["shape"] == "3" and array["dtype"] == "float32"
    assert [(r["label"], r["values"]) for r in array["rows"]] == [
        ("cat", ["0.125"]), ("dog", ["0.750"]), ("bird", ["0.125"])
    ]  # fmt: skip
    assert (array["min"], array["max"], array["mean"]) == ("0.125", "0.750", "0.333")
    assert array["heatmaps"] == [] and array["values_left"] == 0
    html = render_to_string(*view.get_view_template(data))
    assert "<th>dog</th><td>0.750</td>" in html


def test_a_per_pixel_output_is_bounded_heatmaps_and_rows():
    rng = np.random.default_rng(0)
    output = rng.random((300, 200, MAX_CHANNELS + 2)).astype(np.float32)
    output[0, 0, 0], output[5, 7, 0] = -1.0, 2.0  # channel 0's minimum and maximum
    view = RawOutputView()
    data = view.process_data("slice", np.zeros((300, 200, 1), np.uint8), {"output": output})
    [array] = data["arrays"]
    assert len(array["heatmaps"]) == MAX_CHANNELS and array["channels_left"] == 2
    first = decoded(array["heatmaps"][0]["image"])
    assert max(first.shape[:2]) == HEATMAP_SIDE and first.shape[:2] == (256, 171)
    small = view._heatmap(output[:10, :10, 0], 0, [])
    pixels = decoded(small["image"])
    assert (pixels[0, 0] == COLOURMAP[0]).all() and (pixels[5, 7] == COLOURMAP[-1]).all()
    assert len(array["rows"]) == MAX_ROWS
    assert array["rows"][1]["label"] == "0,1"
    assert array["rows"][1]["values"][0] == f"{output[0, 1, 0]:.4f}"
    shown = sum(len(r["values"]) for r in array["rows"])
    assert array["values_left"] == output.size - shown


def test_only_numeric_arrays_are_shown():
    view = RawOutputView()
    outputs = {
        "output": np.ones((2, 2, 1)),
        "pixel_counts": {"0": 3},
        "mask": np.eye(2, dtype=np.uint8),
    }
    data = view.process_data("x", np.zeros((2, 2, 1), np.uint8), outputs)
    assert [a["name"] for a in data["arrays"]] == ["output", "mask"]


@pytest.mark.parametrize("value", [0.0, 5.0])
def test_a_constant_output_has_a_uniform_heatmap(value):
    image = decoded(RawOutputView()._heatmap(np.full((4, 4), value), 0, [])["image"])
    assert (image == COLOURMAP[0]).all()
