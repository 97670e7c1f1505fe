"""Hospital-style data built end to end: compressed and preamble-less DICOM, broken files,
other matrix sizes, 16-bit intensities, and the same tree uploaded as an archive."""

import io

import numpy as np
import pytest
from digits_sunnybrook.data import Slice, SunnybrookData, rasterise_contour, read_contour
from digits_sunnybrook.testing import make_study, make_tree
from PIL import Image
from sunnybrook_helpers import (
    archive_members,
    finished,
    make_tar,
    make_zip,
    post_json,
    post_multipart,
)

from apps.core.storage import get_store
from apps.datasets import shards
from tests.conftest import wait_until

SIZE = 48
BIG_CASE = "SC-HF-NI-6"  # make_study's last case, 72 × 72
BROKEN = ("SC-HF-NI-2", 21)


def iou(a, b):
    a, b = a.astype(bool), b.astype(bool)
    return (a & b).sum() / (a | b).sum()


def stored(dataset, stage):
    """``[(entry, features, mask)]`` of a built stage, entries listed as the job listed them."""
    entries = SunnybrookData(**dataset.options).itemize_entries(stage)
    good = [e for e in entries if isinstance(e, Slice)]
    broken = f"{BROKEN[0]}/IM-0004-{BROKEN[1]:04d}.dcm"
    good = [e for e in good if e.image != broken]
    return [(e, *shards.read_entry(dataset, stage, i)) for i, e in enumerate(good)]


def expected_mask(tree, entry):
    """The mask of the entry's contour file, brought to the dataset's size like the entry;
    and the ellipse make_study drew (the contour traces it)."""
    case, number = entry.image.split("/")[0], int(entry.image[-8:-4])
    ellipse = tree.masks[(case, number)]
    points = read_contour(tree.contours / entry.contour, entry.contour)
    mask = rasterise_contour(points, ellipse.shape, entry.contour)
    if mask.shape != (SIZE, SIZE):
        mask = np.asarray(Image.fromarray(mask).resize((SIZE, SIZE), Image.Resampling.NEAREST))
    return case, mask, ellipse


def test_a_hospital_export_builds_with_every_slice_of_a_case_in_one_stage(
    api_client, people, data_root, worker, client
):
    tree = make_study(data_root)
    api = api_client.as_user(people.owner)
    options = {
        "image_folder": str(tree.images), "contour_folder": str(tree.contours),
        "val_percent": 20, "test_percent": 20, "seed": 1, "bit_depth": 16,
        "resize_width": SIZE, "resize_height": SIZE, "resize_mode": "squash",
    }  # fmt: skip
    dataset = finished(post_json(api, options, max_error_percent=10))
    assert dataset.status == "ready", dataset.job.error
    manifest = dataset.manifest
    assert manifest["feature"] == {"shape": [SIZE, SIZE, 1], "dtype": "uint16", "layout": "HWC"}
    assert manifest["label"] == {"kind": "mask", "shape": [SIZE, SIZE], "dtype": "uint8"}

    # Only the broken file is skipped, named as on disk; the RLE, JPEG 2000, JPEG Lossless
    # and preamble-less files of the first case, and the 72 × 72 case, are all entries.
    [error] = manifest["errors"]
    broken = f"{dataset.options['image_folder']}/{BROKEN[0]}/IM-0004-{BROKEN[1]:04d}.dcm"
    assert error["error"].startswith(broken), error
    counts = {stage: info["count"] for stage, info in manifest["stages"].items()}
    assert sum(counts.values()) == 6 * 6 - 1

    cases = {}
    for stage in ("train", "val", "test"):
        cases[stage] = set()
        for entry, features, mask in stored(dataset, stage):
            case, expected, ellipse = expected_mask(tree, entry)
            cases[stage].add(case)
            np.testing.assert_array_equal(mask, expected)
            assert features.dtype == np.uint16
            if case != BIG_CASE:  # the ventricle is the brightest value: 65535 in 16 bits
                assert iou(mask, ellipse) > 0.75
                assert (features[ellipse == 1] == 65535).all()
            else:
                inside, outside = features[..., 0][mask == 1], features[..., 0][mask == 0]
                assert inside.max() == 65535 and inside.mean() > 3 * outside.mean()
    assert [len(cases[s]) for s in ("train", "val", "test")] == [4, 1, 1]
    assert not (cases["train"] & cases["val"] or cases["train"] & cases["test"])
    assert cases["train"] | cases["val"] | cases["test"] == {c for c, _ in tree.slices}
    note = manifest["notes"][0]
    for stage in ("val", "test"):
        assert f"{stage}: 1 case ({cases[stage].pop()})" in note

    # The explore page shows image, mask and overlay of each entry separately.
    client.force_login(people.owner)
    page = client.get(f"/datasets/{dataset.pk}/explore/?stage=train").content.decode()
    url = f"/datasets/{dataset.pk}/entries/train/0.png"
    for part in ("?part=image", "?part=mask", '"'):
        assert f'src="{url}{part}' in page
    entry, features, mask = stored(dataset, "train")[0]
    pictures = {
        part: np.asarray(Image.open(io.BytesIO(client.get(f"{url}?part={part}").content)))
        for part in ("image", "mask")
    }
    image = pictures["image"].astype(int)
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
    f = features[..., 0].astype(float)  # 16-bit features shown in 8 bits, per image
    np.testing.assert_array_equal(
        image[..., 0], ((f - f.min()) * 255 / (f.max() - f.min())).astype(int)
    )
    np.testing.assert_array_equal(pictures["mask"][mask == 1], [[230, 25, 75]] * int(mask.sum()))
    assert (pictures["mask"][mask == 0] == 0).all()
    assert client.get(f"{url}?part=labels").status_code == 404
    reply = client.get(f"/datasets/{dataset.pk}/mean.png")
    mean = Image.open(io.BytesIO(b"".join(reply.streaming_content)))
    values = np.load(io.BytesIO(get_store().get(dataset.data_prefix + "mean.npy")))
    assert values.max() > 20000  # the 16-bit mean, shown in 8 bits (not wrapped around)
    assert mean.mode == "L"
    np.testing.assert_array_equal(np.asarray(mean), np.round(values[..., 0] / 257))


def upload(name, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"archive": SimpleUploadedFile(name, data)}


def test_an_uploaded_archive_builds_like_the_folders(api_client, people, tmp_path, worker):
    tree = make_tree(tmp_path / "export", cases=("SC-HF-I-1", "SC-N-2", "SC-N-3"), slices=3)
    api = api_client.as_user(people.owner)
    options = {"source": "archive", "val_percent": 34, "seed": 2}
    archive_id = post_multipart(
        api, options, upload("scd.zip", make_zip(archive_members(tree, True))), "zip",
        max_error_percent=20,
    )  # fmt: skip
    tar_id = post_multipart(api, options, upload("scd.tar.gz", make_tar(archive_members(tree))))
    dataset = finished(archive_id)
    assert dataset.status == "ready", dataset.job.error
    manifest = dataset.manifest
    # 9 contours of 3 cases, 1 broken; one case (34 %) for validation.
    counts = {s: i["count"] for s, i in manifest["stages"].items()}
    assert counts["train"] + counts["val"] == 8 and counts["test"] == 0
    assert counts["val"] in (2, 3)
    # A bad file inside the archive is named by the archive and its path there.
    [error] = manifest["errors"]
    assert error["error"].startswith(
        "scd.zip:SCD_ManualContours/SC-N-02/contours-manual/IRCCI-expert/"
        "IM-0001-0021-icontour-manual.txt, line 3: '3 x' is not two numbers"
    )
    _, mask = shards.read_entry(dataset, "train", 0)
    assert mask.sum() > 0
    assert "1 case" in manifest["notes"][0]
    key = dataset.options["archive"]["upload_key"]
    assert dataset.options["archive"]["name"] == "scd.zip"
    assert key.startswith(f"uploads/{people.owner.pk}/")
    wait_until(lambda: not get_store().exists(key), message="the upload was not deleted")

    other = finished(tar_id)
    assert other.status == "ready", other.job.error
    assert sum(i["count"] for i in other.manifest["stages"].values()) == 9


@pytest.mark.parametrize(
    ("name", "members", "message"),
    [
        ("dotdot.zip", [("../evil.dcm", b"x")], "member '../evil.dcm' has a '..' path component"),
        ("link.tar.gz", "symlink", "member 'SCD_DeidentifiedImages/link.dcm' is a symbolic link"),
        ("images.zip", "images", "The archive images.zip holds no contour folder"),
    ],
)
def test_unsafe_or_incomplete_archives_fail_and_publish_nothing(
    api_client, people, tmp_path, worker, name, members, message
):
    tree = make_tree(tmp_path / "export", cases=("SC-N-2",), slices=2)
    good = archive_members(tree)
    if members == "symlink":
        data = make_tar(good, symlink="SCD_DeidentifiedImages/link.dcm")
    elif members == "images":
        data = make_zip([m for m in good if m[0].startswith("SCD_Deidentified")])
    else:
        data = make_zip(good + members)
    api = api_client.as_user(people.owner)
    dataset = finished(post_multipart(api, {"source": "archive"}, upload(name, data), name))
    assert dataset.status == "error"
    assert message in dataset.job.error
    assert list(get_store().list(dataset.data_prefix)) == []
    key = dataset.options["archive"]["upload_key"]
    wait_until(lambda: not get_store().exists(key), message="the upload was not deleted")


def test_an_archive_uploaded_on_the_new_dataset_page(client, people, tmp_path, worker):
    from django.core.files.uploadedfile import SimpleUploadedFile

    tree = make_tree(tmp_path / "export", cases=("SC-N-2", "SC-N-3"), slices=2)
    client.force_login(people.owner)
    form = {
        "data-source": "archive", "data-image_folder": "", "data-contour_folder": "",
        "data-archive": SimpleUploadedFile("scd.tar.gz", make_tar(archive_members(tree))),
        "data-val_percent": "50", "data-intensity": "percentile", "data-percentile_low": "1",
        "data-percentile_high": "99", "data-bit_depth": "8", "dataset-name": "LV (archive)",
        "dataset-max_error_percent": "10", "dataset-processes": "1",
        "dataset-visibility": "private", "dataset-team": "",
    }  # fmt: skip
    reply = client.post("/datasets/new/image-sunnybrook/", form)
    assert reply.status_code == 302, reply.content.decode()[-3000:]
    dataset = finished(int(reply["Location"].strip("/").split("/")[-1]))
    assert dataset.status == "ready", dataset.job.error
    assert {s: i["count"] for s, i in dataset.manifest["stages"].items()} == {
        "train": 2, "val": 2, "test": 0
    }  # fmt: skip
    assert dataset.options["archive"]["upload_key"].startswith(f"uploads/{people.owner.pk}/")
    features, mask = shards.read_entry(dataset, "train", 0)
    assert features.dtype == np.uint8 and (features[mask == 1] == 255).all()


def test_an_upload_key_sent_as_an_option_is_never_used(api_client, people):
    """Only a file uploaded with the request becomes the archive: a key someone names in
    the options (another user's upload) is refused, never read."""
    from apps.core import uploads
    from apps.datasets.models import Dataset

    key = uploads.store_bytes(make_zip([("a/IM-0001-0001.dcm", b"x")]), "x.zip", people.other)
    options = {"source": "archive", "archive": {"upload_key": key, "name": "x.zip", "size": 1}}
    reply = api_client.as_user(people.owner).post(
        "/api/v1/datasets/", {"type": "image-sunnybrook", "name": "theirs", "options": options},
        format="json",
    )  # fmt: skip
    assert reply.status_code == 400
    message = reply.json()["options"]["archive"][0]["message"]
    assert message == "Upload a zip or tar archive of the two folders."
    assert not Dataset.objects.exists() and get_store().exists(key)
