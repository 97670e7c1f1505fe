"""Sunnybrook datasets built end to end: REST API or HTML form → worker → job process → store."""

import io

import numpy as np
import pytest
from digits_sunnybrook.data import Slice, SunnybrookData
from digits_sunnybrook.testing import (
    contour_path,
    image_path,
    make_tree,
    slice_rectangle,
    write_contour,
    write_dicom,
)
from PIL import Image
from sunnybrook_helpers import finished

from apps.core.storage import get_store
from apps.datasets import shards
from apps.datasets.models import Dataset

SIZE = 32
BAD_NUMBERS = "IM-0001-0030-icontour-manual.txt"
NO_IMAGE = "IM-0001-0099-icontour-manual.txt"


@pytest.fixture
def tree(data_root):
    """2 cases × 6 good slices, one contour without an image, one contour with bad numbers."""
    tree = make_tree(data_root, cases=("SC-HF-I-1", "SC-N-2"), slices=6, size=SIZE)
    write_contour(contour_path(tree.contours, "SC-N-02", 99), [(1, 1), (9, 1), (9, 9)])
    write_dicom(image_path(tree.images, "SC-HF-I-1", 4, 30), np.ones((SIZE, SIZE), np.uint16))
    contour_path(tree.contours, "SC-HF-I-01", 30).write_text("10.0 10.0\n20.0 abc\n20.0 20.0\n")
    return tree


def expected_mask(entry: Slice) -> np.ndarray:
    """The mask of the rectangle ``make_tree`` traced on the entry's slice."""
    x0, y0, x1, y1 = slice_rectangle(int(entry.image[-8:-4]) - 20, SIZE)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[y0 : y1 + 1, x0 : x1 + 1] = 1
    return mask


def encoded_entries(options, stage):
    """The entries the job kept for ``stage``, in the order it wrote them."""
    entries = SunnybrookData(**options).itemize_entries(stage)
    return [e for e in entries if isinstance(e, Slice) and not e.contour.endswith(BAD_NUMBERS)]


def test_dataset_built_through_the_api(api_client, people, tree, worker, client):
    options = {
        "image_folder": str(tree.images), "contour_folder": str(tree.contours),
        "val_percent": 25, "seed": 5,
    }  # fmt: skip
    api = api_client.as_user(people.owner)
    reply = api.post(
        "/api/v1/datasets/",
        {"type": "image-sunnybrook", "name": "LV", "options": options, "max_error_percent": 20},
        format="json",
    )
    assert reply.status_code == 201, reply.content
    dataset = finished(reply.json()["id"])
    assert dataset.status == "ready", dataset.job.error
    manifest = dataset.manifest

    # 14 contours: 12 good, 2 bad (one per case); 25 % of the 2 cases (at least one) drawn
    # for validation: each stage holds all 7 contours of one case.
    counts = {stage: info["count"] for stage, info in manifest["stages"].items()}
    assert counts == {"train": 6, "val": 6, "test": 0}
    assert sorted(e["stage"] for e in manifest["errors"]) == ["train", "val"]
    [note] = manifest["notes"]
    assert note.startswith("Split by case (patient), never by slice: no case is in two stages.")
    assert "test: 0 cases." in note
    assert api.get(f"/api/v1/datasets/{dataset.pk}/").json()["counts"] == counts
    assert manifest["feature"] == {"shape": [SIZE, SIZE, 1], "dtype": "uint8", "layout": "HWC"}
    assert manifest["label"] == {"kind": "mask", "shape": [SIZE, SIZE], "dtype": "uint8"}
    assert manifest["label_names"] == ["background", "left ventricle"]
    assert manifest["format"] == "digits-npy/1" and manifest["mean"]["count"] == counts["train"]

    assert manifest["error_count"] == 2
    by_file = {
        name: next(e["error"] for e in manifest["errors"] if name in e["error"])
        for name in (BAD_NUMBERS, NO_IMAGE)
    }
    assert "line 2: '20.0 abc' is not two numbers" in by_file[BAD_NUMBERS]
    assert by_file[BAD_NUMBERS].startswith(f"{dataset.options['contour_folder']}/SC-HF-I-01/")
    assert (
        f"no image IM-*-0099.dcm in {dataset.options['image_folder']}/SC-N-2" in by_file[NO_IMAGE]
    )

    # Every stored mask is the rasterised contour of its slice.
    stored_options = {**options, "image_folder": str(tree.images.resolve())}
    stored_options["contour_folder"] = str(tree.contours.resolve())
    cases = {}
    for stage in ("train", "val"):
        entries = encoded_entries(stored_options, stage)
        assert len(entries) == counts[stage]
        cases[stage] = {e.case for e in entries}
        assert (
            len(cases[stage]) == 1 and f"{stage}: 1 case ({entries[0].image.split('/')[0]})" in note
        )
        for index, entry in enumerate(entries):
            features, mask = shards.read_entry(dataset, stage, index)
            np.testing.assert_array_equal(mask, expected_mask(entry))
            assert (features[mask == 1] == 255).all()

    # The explore page, and an entry drawn with the left ventricle's colour over the image.
    client.force_login(people.owner)
    page = client.get(f"/datasets/{dataset.pk}/explore/?stage=train")
    assert page.status_code == 200
    assert f"/datasets/{dataset.pk}/entries/train/0.png" in page.content.decode()
    png = client.get(f"/datasets/{dataset.pk}/entries/train/0.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    picture = np.asarray(Image.open(io.BytesIO(png.content)).convert("RGB")).astype(int)
    mask = expected_mask(encoded_entries(stored_options, "train")[0]).astype(bool)
    red, green, blue = picture[..., 0], picture[..., 1], picture[..., 2]
    assert (red[mask] - green[mask] > 60).all() and (red[mask] - blue[mask] > 30).all()
    assert (red[~mask] == green[~mask]).all() and (green[~mask] == blue[~mask]).all()


def test_dataset_built_through_the_html_form(client, people, tree, worker):
    client.force_login(people.owner)
    form = {
        "data-image_folder": str(tree.images), "data-contour_folder": str(tree.contours),
        "data-channel_conversion": "RGB", "data-val_percent": "10", "data-seed": "1",
        "data-series": "", "dataset-name": "LV (form)", "dataset-description": "",
        "dataset-max_error_percent": "20", "dataset-processes": "2",
        "dataset-visibility": "private", "dataset-team": "",
    }  # fmt: skip
    reply = client.post("/datasets/new/image-sunnybrook/", form)
    assert reply.status_code == 302, reply.content.decode()[-3000:]
    dataset = Dataset.objects.get(name="LV (form)")
    assert reply["Location"] == f"/datasets/{dataset.pk}/"
    dataset = finished(dataset.pk)
    assert dataset.status == "ready", dataset.job.error
    assert dataset.manifest["feature"]["shape"] == [SIZE, SIZE, 3]
    # 14 contours, 10 % → 1 for validation.
    assert sum(s["count"] for s in dataset.manifest["stages"].values()) == 12
    features, mask = shards.read_entry(dataset, "train", 0)
    assert (features[..., 0] == features[..., 2]).all() and mask.any()
    detail = client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert 'id="entry-errors"' in detail and BAD_NUMBERS in detail and NO_IMAGE in detail
    assert 'id="dataset-notes"' in detail and "Split by case (patient), never by slice" in detail


def test_a_form_error_names_the_missing_folder(client, people, tree):
    client.force_login(people.owner)
    missing = tree.contours.parent / "SCD_ManualContours"
    page = client.post(
        "/datasets/new/image-sunnybrook/",
        {"data-image_folder": str(tree.images), "data-contour_folder": str(missing),
         "dataset-name": "x", "dataset-max_error_percent": "10", "dataset-processes": "1",
         "dataset-visibility": "private"},
    )  # fmt: skip
    assert page.status_code == 200
    assert f"Folder {missing} does not exist on the server." in page.content.decode()
    assert not Dataset.objects.exists()


def test_a_build_whose_every_entry_is_broken_fails_and_publishes_nothing(
    api_client, people, data_root, worker
):
    tree = make_tree(data_root, cases=("SC-N-2",), slices=3, size=SIZE)
    for _, number in tree.slices:
        contour_path(tree.contours, "SC-N-02", number).write_text("1 2 3\n")
    reply = api_client.as_user(people.owner).post(
        "/api/v1/datasets/",
        {"type": "image-sunnybrook", "name": "broken", "max_error_percent": 100,
         "options": {"image_folder": str(tree.images), "contour_folder": str(tree.contours)}},
        format="json",
    )  # fmt: skip
    assert reply.status_code == 201, reply.content
    dataset = finished(reply.json()["id"])
    assert dataset.status == "error"
    assert "No entry could be encoded (3 bad; first: " in dataset.job.error
    assert "icontour-manual.txt, line 1: 3 values" in dataset.job.error
    assert list(get_store().list(dataset.data_prefix)) == []


def test_the_api_refuses_folders_outside_the_roots(api_client, people, data_root, tmp_path):
    reply = api_client.as_user(people.owner).post(
        "/api/v1/datasets/",
        {"type": "image-sunnybrook", "name": "etc",
         "options": {"image_folder": "/etc", "contour_folder": str(tmp_path)}},
        format="json",
    )  # fmt: skip
    assert reply.status_code == 400
    errors = reply.json()["options"]
    assert "outside the folders this server may read from" in errors["image_folder"][0]["message"]
    assert "outside the folders" in errors["contour_folder"][0]["message"]
    assert not Dataset.objects.exists()
