"""A model's Test page and ``POST /api/v1/models/<id>/infer/``: the data plugin's inference
form, its encoding of an uploaded DICOM (and contour) file, the task's answer and the view
plugins.

The network's answer comes from a stand-in for the inference server (``service.infer``,
tested with real models in the serve tests, and end to end by the browser test): it
segments the bright pixels of the input, so the expected mask is known exactly. All the
rest is real: the Sunnybrook plugin's form and encoding, the views, the pages, the API.
"""

import base64
import io

import numpy as np
import pytest
from digits_sunnybrook.data import parse_contour, rasterise_contour
from digits_sunnybrook.testing import ellipse_mask, ellipse_points, write_contour, write_dicom
from PIL import Image

from apps.core.storage import get_store
from apps.datasets.models import Dataset
from apps.inference import service
from apps.mlmodels import snapshots
from apps.mlmodels.models import TrainedModel

SIZE = 48
VENTRICLE = (22.0, 20.0, 9.0, 7.0)  # (cx, cy, rx, ry) drawn bright in the scan
CONTOUR = (24.0, 21.0, 8.0, 8.0)  # the expert's contour: overlapping, not the same


@pytest.fixture
def seg_model(people):
    dataset = Dataset.objects.create(
        owner=people.owner, name="lv", type="image-sunnybrook", status="ready",
        options={"channel_conversion": "L"},
        manifest={"task": "segmentation", "label": {"kind": "mask"},
                  "feature": {"shape": [SIZE, SIZE, 1], "dtype": "uint8", "layout": "HWC"},
                  "label_names": ["background", "left ventricle"]},
    )  # fmt: skip
    model = TrainedModel.objects.create(
        owner=people.owner, name="unet", dataset=dataset, status="ready", best_epoch=3
    )
    get_store().put(snapshots.key(model.pk, 3), b"snapshot")  # a trained model has its epochs
    return model


@pytest.fixture
def stand_in_server(monkeypatch):
    """``service.infer`` answering like a network that segments bright pixels."""
    calls = []

    def infer(model, arrays, epoch=None, timeout=service.DEFAULT_TIMEOUT, layers=False):
        arrays = np.asarray(arrays)
        calls.append((model.pk, arrays.shape, epoch))
        bright = (arrays[..., 0] >= 128).astype(np.float32)
        outputs = np.stack([1 - bright * 0.9, 0.1 + bright * 0.8], axis=-1)
        return service.Prediction(outputs=outputs, epoch=epoch or model.best_epoch, cache_hit=True)

    monkeypatch.setattr(service, "infer", infer)
    return calls


@pytest.fixture
def files(tmp_path):
    pixels = np.where(ellipse_mask(VENTRICLE, SIZE) == 1, 3000, 200).astype(np.uint16)
    dicom = write_dicom(tmp_path / "IM-0001-0048.dcm", pixels)
    contour = write_contour(tmp_path / "IM-0001-0048-icontour-manual.txt", ellipse_points(CONTOUR))
    return dicom, contour


def expected_scores(contour_path):
    predicted = ellipse_mask(VENTRICLE, SIZE) == 1
    truth = rasterise_contour(
        parse_contour(contour_path.read_bytes(), "c"), (SIZE, SIZE), "c"
    ) == 1  # fmt: skip
    inter = (predicted & truth).sum()
    dice = 2 * inter / (predicted.sum() + truth.sum())
    return predicted, dice, inter / (predicted | truth).sum()


@pytest.fixture
def api(api_client, people):
    return api_client.as_user(people.owner)


def upload(path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(path.name, path.read_bytes())


# --- the page ------------------------------------------------------------------------------
def test_the_model_page_offers_test_with_the_plugin_form_and_the_views(client, people, seg_model):
    client.force_login(people.owner)
    detail = client.get(f"/models/{seg_model.pk}/").content.decode()
    assert f'href="/models/{seg_model.pk}/test/" data-role="test"' in detail
    assert "Classify an image" not in detail  # a segmentation model is tested, not classified
    page = client.get(f"/models/{seg_model.pk}/test/").content.decode()
    assert 'id="sunnybrook-inference"' in page  # the plugin's own inference template
    assert 'name="dicom_file"' in page and 'name="contour_file"' in page
    options = page[page.index('data-role="view-select"') :].split("</select>")[0]
    assert options.index('value="image-segmentation" selected') < options.index("raw-output")
    assert 'name="image-segmentation-opacity"' in page  # the view's config form


def test_testing_a_dicom_with_its_contour_shows_the_overlay_and_dice(
    client, people, seg_model, stand_in_server, files
):
    dicom, contour = files
    client.force_login(people.owner)
    page = client.post(
        f"/models/{seg_model.pk}/test/",
        {"dicom_file": upload(dicom), "contour_file": upload(contour), "epoch": "3",
         "view": "image-segmentation", "image-segmentation-opacity": "70"},
    ).content.decode()  # fmt: skip
    assert stand_in_server == [(seg_model.pk, (1, SIZE, SIZE, 1), 3)]
    assert "Result (epoch 3)" in page
    assert 'class="seg-mask-layer"' in page and 'data-opacity="70"' in page
    predicted, dice, iou = expected_scores(contour)
    assert f'<th data-role="dice">{dice:.3f}</th>' in page
    assert f'<th data-role="iou">{iou:.3f}</th>' in page
    assert f"<td>{predicted.sum()}</td>" in page  # the ventricle's pixel count


def test_the_raw_output_view_shows_the_network_output(
    client, people, seg_model, stand_in_server, files
):
    client.force_login(people.owner)
    page = client.post(
        f"/models/{seg_model.pk}/test/",
        {"dicom_file": upload(files[0]), "view": "raw-output", "raw-output-digits": "2"},
    ).content.decode()
    assert 'data-view="raw-output"' in page and "shape 48×48×2, float32" in page
    assert "<th>0,0</th><td>1.00</td><td>0.10</td>" in page  # a dark pixel: background
    assert "seg-mask-layer" not in page


def test_bad_inputs_are_reported_on_their_field(
    client, people, seg_model, stand_in_server, tmp_path
):
    client.force_login(people.owner)
    url = f"/models/{seg_model.pk}/test/"
    page = client.post(url, {"view": "image-segmentation"}).content.decode()
    assert "Upload a DICOM file or give a validation record, not both." in page
    not_dicom = tmp_path / "notes.dcm"
    not_dicom.write_text("hello")
    page = client.post(url, {"dicom_file": upload(not_dicom)}).content.decode()
    assert "notes.dcm is not a readable DICOM file" in page
    assert stand_in_server == []


@pytest.fixture
def slow_reads(monkeypatch):
    """Reading an input waits until the test ends: a timeout of 0 s then always fires (a
    quick read could otherwise finish before the request thread even asks for it)."""
    import threading

    from apps.mlmodels import single_inference

    release = threading.Event()

    def waiting_read(*args):
        release.wait(timeout=60)
        raise RuntimeError("the test is over: nothing waits for this read")

    monkeypatch.setattr(single_inference, "_read", waiting_read)
    yield
    release.set()


def test_reading_inputs_is_bounded_in_time(
    client, api, people, seg_model, stand_in_server, files, settings, slow_reads
):
    settings.DIGITS_INFERENCE_READ_TIMEOUT = 0  # no input can be read in no time
    client.force_login(people.owner)
    page = client.post(f"/models/{seg_model.pk}/test/", {"dicom_file": upload(files[0])})
    assert "Reading the input took longer than 0 s." in page.content.decode()
    with files[0].open("rb") as image:
        reply = api.post(
            f"/api/v1/models/{seg_model.pk}/infer/", {"dicom_file": image}, format="multipart"
        )
    assert reply.status_code == 422
    assert reply.json() == {"non_field_errors": ["Reading the input took longer than 0 s."]}
    assert stand_in_server == []


def test_another_user_s_private_model_is_not_found(client, people, seg_model):
    client.force_login(people.other)
    assert client.get(f"/models/{seg_model.pk}/test/").status_code == 404


# --- the API -------------------------------------------------------------------------------
def test_the_api_answers_the_mask_pixel_counts_and_dice(api, seg_model, stand_in_server, files):
    dicom, contour = files
    with dicom.open("rb") as image, contour.open("rb") as outline:
        reply = api.post(
            f"/api/v1/models/{seg_model.pk}/infer/",
            {"dicom_file": image, "contour_file": outline},
            format="multipart",
        )
    assert reply.status_code == 200, reply.content
    answer = reply.json()
    assert answer["epoch"] == 3 and answer["task"] == "segmentation"
    [result] = answer["results"]
    predicted, dice, iou = expected_scores(contour)
    assert result["input"].startswith("IM-0001-0048.dcm")
    png = base64.b64decode(result["mask"].removeprefix("data:image/png;base64,"))
    assert (np.asarray(Image.open(io.BytesIO(png))) == predicted).all()
    assert result["mask_shape"] == [SIZE, SIZE]
    assert result["pixel_counts"] == {
        "background": int(SIZE * SIZE - predicted.sum()), "left ventricle": int(predicted.sum())
    }  # fmt: skip
    [ventricle] = result["scores"]
    assert ventricle["class"] == "left ventricle"
    assert ventricle["dice"] == pytest.approx(dice) and ventricle["iou"] == pytest.approx(iou)
    assert result["mean_dice"] == pytest.approx(dice)


def test_the_api_names_the_field_at_fault(api, seg_model, stand_in_server, files, tmp_path):
    url = f"/api/v1/models/{seg_model.pk}/infer/"
    reply = api.post(url, {}, format="multipart")
    assert reply.status_code == 400
    assert reply.json() == {
        "non_field_errors": ["Upload a DICOM file or give a validation record, not both."]
    }
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2\n")
    with files[0].open("rb") as image, bad.open("rb") as outline:
        reply = api.post(url, {"dicom_file": image, "contour_file": outline}, format="multipart")
    assert reply.status_code == 400 and list(reply.json()) == ["contour_file"]
    assert "bad.txt has 1 point(s)" in reply.json()["contour_file"][0]
    with files[0].open("rb") as image:
        reply = api.post(url, {"dicom_file": image, "epoch": "zero"}, format="multipart")
    assert reply.status_code == 400 and list(reply.json()) == ["epoch"]
    assert stand_in_server == []


def test_the_api_refuses_another_user_s_private_model(api_client, people, seg_model, files):
    other = api_client.as_user(people.other)
    with files[0].open("rb") as image:
        reply = other.post(
            f"/api/v1/models/{seg_model.pk}/infer/", {"dicom_file": image}, format="multipart"
        )
    assert reply.status_code == 404


def test_the_schema_documents_the_answer(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/models/{id}/infer/"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    answer = schema["components"]["schemas"][ok.rsplit("/", 1)[1]]
    result = schema["components"]["schemas"]["InferResult"]["properties"]
    assert set(answer["properties"]) == {"epoch", "task", "results"}
    assert {"input", "mask", "pixel_counts", "scores", "predictions", "mean_dice"} <= set(result)
    assert {"400", "404", "422", "503"} <= set(operation["responses"])


def test_a_failing_view_costs_its_output_not_the_page(
    client, people, seg_model, stand_in_server, files, monkeypatch
):
    from apps.core.plugins import catalog
    from tests.plugins.views import MaskView

    class Broken(MaskView):
        def process_data(self, input_id, input_data, output_data, ground_truth=None):
            raise ValueError("no colours today")

    monkeypatch.setattr(catalog, "visualizations_for", lambda task: {"test-masks": Broken})
    client.force_login(people.owner)
    reply = client.post(f"/models/{seg_model.pk}/test/", {"dicom_file": upload(files[0])})
    page = reply.content.decode()
    assert reply.status_code == 200
    assert "The view “Test masks” failed: ValueError: no colours today" in page
    assert 'id="test-form"' in page  # the form is still there to try again


def test_a_dataset_type_that_fails_to_read_is_reported_not_a_server_error(
    api, seg_model, stand_in_server, files, monkeypatch
):
    from digits_sunnybrook.data import SunnybrookData

    def broken(self, entry):
        raise RuntimeError("decoder crashed")

    monkeypatch.setattr(SunnybrookData, "encode_entry", broken)
    with files[0].open("rb") as image:
        reply = api.post(
            f"/api/v1/models/{seg_model.pk}/infer/", {"dicom_file": image}, format="multipart"
        )
    assert reply.status_code == 422
    assert reply.json() == {
        "non_field_errors": [
            "The dataset type could not read the input (RuntimeError: decoder crashed)."
        ]
    }
    assert stand_in_server == []
