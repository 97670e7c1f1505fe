"""The new-dataset page of the type and the plugin's resize preview."""

import io

import numpy as np
import pytest
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile
from imageclass_helpers import bomb_png, png_bytes
from PIL import Image

from apps.datasets.models import Dataset

PREVIEW = "/plugins/image-classification/preview/"
COLUMNS = np.tile((np.arange(20) * 12).astype(np.uint8), (10, 1))  # 20 wide × 10 high


def sample(data=None, name="sample.png"):
    return SimpleUploadedFile(name, png_bytes(COLUMNS) if data is None else data)


def post_preview(client, **fields):
    data = {"width": 10, "height": 10, "resize_mode": "crop", "image_type": "grayscale"}
    data.update(fields)
    data.setdefault("image", sample())
    return client.post(PREVIEW, data)


def test_the_page_shows_every_source_and_the_preview(client, people):
    client.force_login(people.owner)
    page = client.get("/datasets/new/image-classification/")
    assert page.status_code == 200
    html = page.content.decode()
    for key in ("folder", "archive", "store", "list"):
        assert f'data-imageclass-source="{key}"' in html
    for name in ("data-source", "data-folder", "data-archive", "data-prefix", "data-train_list",
                 "data-labels_file", "data-resize_mode", "data-mean_image"):  # fmt: skip
        assert f'name="{name}"' in html
    assert f'data-url="{PREVIEW}"' in html
    assert "digits_imageclass/preview.js" in html and 'data-prefix="data-"' in html
    assert finders.find("digits_imageclass/preview.js")
    assert "/datasets/new/image-classification/" in client.get("/datasets/new/").content.decode()


def test_form_errors_are_shown_on_the_page(client, people, data_root, tmp_path):
    client.force_login(people.owner)
    (data_root / "train.txt").write_text("a.png 0\n")
    common = {"dataset-name": "x", "dataset-max_error_percent": "10", "dataset-processes": "1",
              "dataset-visibility": "private", "dataset-team": ""}  # fmt: skip
    page = client.post(
        "/datasets/new/image-classification/",
        {**common, "data-source": "folder", "data-folder": str(tmp_path)},
    )
    assert page.status_code == 200
    assert "outside the folders this server may read from" in page.content.decode()
    page = client.post(
        "/datasets/new/image-classification/",
        {
            **common, "data-source": "list", "data-train_list_path": str(data_root / "train.txt"),
            "data-labels_file": SimpleUploadedFile("labels.txt", b"cat\ndog\ncat\n"),
        },
    )  # fmt: skip
    assert page.status_code == 200
    assert "duplicate label &#x27;cat&#x27; (lines 1 and 3)" in page.content.decode()
    assert not Dataset.objects.exists()


def test_the_preview_is_the_resized_sample(client, people):
    client.force_login(people.owner)
    reply = post_preview(client)
    assert reply.status_code == 200 and reply["Content-Type"] == "image/png"
    result = np.asarray(Image.open(io.BytesIO(reply.content)))
    np.testing.assert_array_equal(result, COLUMNS[:, 5:15])  # crop keeps columns 5..14
    reply = post_preview(client, resize_mode="fill", image_type="color", width=30, height=12)
    image = Image.open(io.BytesIO(reply.content))
    assert image.size == (30, 12) and image.mode == "RGB"


def test_the_preview_needs_a_login(client):
    reply = post_preview(client)
    assert reply.status_code == 302 and "/accounts/login/" in reply["Location"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"width": 0}, "width: Ensure this value is greater than or equal to 1."),
        ({"resize_mode": "stretch"}, "resize_mode: Select a valid choice."),
        ({"image": sample(b"plain text", "notes.png")}, "notes.png is not an image"),
        ({"image": sample(bomb_png(100_000, 100_000), "bomb.png")}, "bomb.png: refused by the decompression-bomb"),
    ],
    ids=["width", "mode", "not-an-image", "bomb"],
)  # fmt: skip
def test_bad_preview_requests_say_why(client, people, fields, message):
    client.force_login(people.owner)
    reply = post_preview(client, **fields)
    assert reply.status_code == 400
    assert message in reply.json()["error"]


def test_the_preview_sample_is_size_limited(client, people, monkeypatch):
    from digits_imageclass import views

    monkeypatch.setattr(views, "MAX_PREVIEW_BYTES", 20)
    client.force_login(people.owner)
    reply = post_preview(client)
    assert reply.status_code == 413 and "sample.png is larger than" in reply.json()["error"]
    assert client.get(PREVIEW).status_code == 405
