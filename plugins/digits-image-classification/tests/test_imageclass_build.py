"""Image classification datasets built end to end: REST API or HTML form → worker → job → store.

The images are scikit-learn's handwritten digits (8×8, one folder per digit). Expected
counts per class and stage come from ``imageclass_helpers.expected_split``, the split
rule computed independently of the plugin.
"""

import json
import tarfile
import uuid
from collections import Counter

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from imageclass_helpers import (
    Special,
    bomb_png,
    class_counts,
    digit_members,
    expected_split,
    finished,
    job_log,
    make_tar,
    make_zip,
    png_bytes,
    stored_entries,
)

from apps.core.storage import get_store
from apps.datasets import shards
from apps.datasets.models import Dataset
from tests.conftest import wait_until

TYPE = "image-classification"


def post_json(api, options, name="digits", **extra):
    reply = api.post(
        "/api/v1/datasets/",
        {"type": TYPE, "name": name, "options": options, **extra},
        format="json",
    )
    assert reply.status_code == 201, reply.content
    return reply.json()["id"]


def post_multipart(api, options, files, name="digits", **extra):
    data = {"type": TYPE, "name": name, "options": json.dumps(options), **extra, **files}
    reply = api.post("/api/v1/datasets/", data, format="multipart")
    assert reply.status_code == 201, reply.content
    return reply.json()["id"]


def originals(digits, indices, channels=1):
    """What the dataset should hold for these images: ``Counter((label, pixels))``."""
    found = Counter()
    for i in indices:
        pixels = digits.images[i][:, :, None]
        if channels == 3:
            pixels = np.repeat(pixels, 3, axis=2)
        found[(int(digits.targets[i]), pixels.tobytes())] += 1
    return found


def test_a_server_folder_dataset_built_through_the_api(
    api_client, people, data_root, worker, digits
):
    written = digits.write_folder(data_root / "digits")
    options = {
        "source": "folder", "folder": str(data_root / "digits"), "image_type": "grayscale",
        "width": 8, "height": 8, "val_percent": 20, "test_percent": 10, "seed": 7,
    }  # fmt: skip
    api = api_client.as_user(people.owner)
    dataset = finished(post_json(api, options, processes=2))
    assert dataset.status == "ready", dataset.job.error
    manifest = dataset.manifest

    expected = expected_split(digits.counts(written), 20, 10)
    assert class_counts(manifest) == expected
    counts = {stage: sum(c.values()) for stage, c in expected.items()}
    assert api.get(f"/api/v1/datasets/{dataset.pk}/").json()["counts"] == counts
    assert counts == {"train": 1248, "val": 364, "test": 185}  # 1797 digits
    assert manifest["format"] == "digits-tfrecord/1" and manifest["encoding"] == "png"
    assert manifest["feature"] == {"shape": [8, 8, 1], "dtype": "uint8", "layout": "HWC"}
    assert manifest["label_names"] == [str(d) for d in range(10)]
    assert manifest["error_count"] == 0
    store = get_store()
    assert store.get(dataset.data_prefix + "labels.txt") == b"0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n"

    # Every image is stored once, unchanged, under its digit; none is lost or doubled.
    assert stored_entries(dataset) == originals(digits, range(len(digits.images)))
    train = [shards.read_entry(dataset, "train", i)[0] for i in range(counts["train"])]
    assert manifest["mean"]["count"] == counts["train"]
    mean = np.load(shards.local_copy(dataset, "mean.npy"))
    np.testing.assert_allclose(mean, np.mean(train, axis=0), atol=1e-4)
    assert store.exists(dataset.data_prefix + "mean.png")


def test_archive_and_store_prefix_datasets_built_through_the_api(
    api_client, people, data_root, tmp_path, worker, digits
):
    api = api_client.as_user(people.owner)
    # A tar.gz wrapped in one folder, with archiver debris, uploaded as a multipart part.
    members = digit_members(digits, classes=range(10), per_class=40, folder="digits/")
    members += [("digits/README", b"hand-written digits"), ("__MACOSX/digits/._0", b"junk")]
    archive = make_tar(tmp_path / "digits.tar.gz", members).read_bytes()
    archive_id = post_multipart(
        api,
        {"source": "archive", "width": 16, "height": 16, "resize_mode": "crop", "encoding": "jpg"},
        {"archive": SimpleUploadedFile("digits.tar.gz", archive)},
        name="from an archive",
    )
    # The same kind of tree below an object-store import prefix.
    prefix = f"imports/digits-{uuid.uuid4().hex}/"
    store = get_store()
    chosen = digits.indices(classes=range(5), per_class=40)
    for i in chosen:
        store.put(f"{prefix}{digits.targets[i]}/img_{i:04d}.png", png_bytes(digits.images[i]))
    store_id = post_json(
        api,
        {"source": "store", "prefix": prefix, "image_type": "grayscale", "width": 8, "height": 8,
         "encoding": "none", "max_per_class": 30, "val_percent": 10, "mean_image": False},
        name="from the store",
    )  # fmt: skip

    dataset = finished(archive_id)
    assert dataset.status == "ready", dataset.job.error
    manifest = dataset.manifest
    assert class_counts(manifest) == expected_split({d: 40 for d in range(10)}, 25, 0)
    assert manifest["encoding"] == "jpg"
    assert manifest["feature"] == {"shape": [16, 16, 3], "dtype": "uint8", "layout": "HWC"}
    assert manifest["label_names"] == [str(d) for d in range(10)]
    assert manifest["mean"]["count"] == 300  # mean_image left out: on by default
    assert dataset.options["archive"]["name"] == "digits.tar.gz"
    upload_key = dataset.options["archive"]["upload_key"]
    wait_until(lambda: not store.exists(upload_key), message="the upload was not deleted")

    dataset = finished(store_id)
    assert dataset.status == "ready", dataset.job.error
    manifest = dataset.manifest
    assert class_counts(manifest) == expected_split({d: 30 for d in range(5)}, 10, 0)
    assert manifest["encoding"] == "none" and "mean" not in manifest
    stored = stored_entries(dataset)
    assert sum(stored.values()) == 150 and not stored - originals(digits, chosen)
    store.delete_prefix(prefix)


def test_a_text_list_dataset_built_through_the_html_form(client, people, data_root, worker, digits):
    pool = data_root / "pool"
    pool.mkdir()
    train = digits.indices(per_class=20)
    val = [i for i in digits.indices(per_class=25) if i not in set(train)]  # 5 per class
    for i in train + val:
        (pool / f"img_{i:04d}.png").write_bytes(png_bytes(digits.images[i]))
    (pool / "broken.png").write_text("this is not a PNG")
    train_lines = [f"img_{i:04d}.png {digits.targets[i]}" for i in train]
    train_lines += ["img_9999.png 3", "broken.png 2"]
    (data_root / "val.txt").write_text(
        "".join(f"{pool}/img_{i:04d}.png {digits.targets[i]}\n" for i in val)
    )
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    client.force_login(people.owner)
    form = {
        "data-source": "list",
        "data-train_list": SimpleUploadedFile("train.txt", "\n".join(train_lines).encode()),
        "data-val_list_path": str(data_root / "val.txt"),
        "data-labels_file": SimpleUploadedFile("labels.txt", "\n".join(names).encode()),
        "data-path_prefix": str(pool), "data-image_type": "grayscale", "data-width": "8",
        "data-height": "8", "data-resize_mode": "squash", "data-encoding": "png",
        "data-val_percent": "25", "data-test_percent": "10", "data-min_per_class": "2",
        "data-seed": "3", "data-mean_image": "on",
        "dataset-name": "digits (list)", "dataset-description": "", "dataset-max_error_percent": "5",
        "dataset-processes": "2", "dataset-visibility": "private", "dataset-team": "",
    }  # fmt: skip
    reply = client.post(f"/datasets/new/{TYPE}/", form)
    assert reply.status_code == 302, reply.content.decode()[-3000:]
    dataset = Dataset.objects.get(name="digits (list)")
    assert reply["Location"] == f"/datasets/{dataset.pk}/"
    dataset = finished(dataset.pk)
    assert dataset.status == "ready", dataset.job.error
    manifest = dataset.manifest

    # The validation list replaces the 25 %; 10 % of each class's training lines is test.
    # Digits 2 and 3 have 21 lines (one bad each): those count in the split, then the bad
    # entry is missing from the stage the split put it in.
    expected = expected_split({d: 21 if d in (2, 3) else 20 for d in range(10)}, 0, 10)
    expected["val"] = {str(d): 5 for d in range(10)}
    for error in manifest["errors"]:
        label = "3" if error["entry"].endswith("img_9999.png") else "2"
        expected[error["stage"]][label] -= 1
    assert class_counts(manifest) == expected
    assert manifest["label_names"] == names
    assert get_store().get(dataset.data_prefix + "labels.txt").decode() == "\n".join(names) + "\n"
    assert dataset.options["shuffle"] is False  # an unchecked box in a browser form
    assert stored_entries(dataset) == originals(digits, train + val)
    errors = {e["entry"].rsplit("/", 1)[-1]: e["error"] for e in manifest["errors"]}
    assert errors == {
        "img_9999.png": f"{pool}/img_9999.png: no such file",
        "broken.png": f"{pool}/broken.png is not an image in a supported format "
        "(png, jpg, bmp, ppm, pgm, tif)",
    }


def test_bad_images_are_skipped_and_listed_or_fail_the_build(
    api_client, people, data_root, worker, digits
):
    root = data_root / "mixed"
    written = digits.write_folder(root, classes=(0, 1, 2), per_class=10)
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)
    bad = {
        "0/bomb.png": bomb_png(100_000, 100_000),
        "0/big.png": bomb_png(10_000, 10_000),  # past the warning limit only: refused too
        "1/notes.png": b"plain text, not an image",
        "1/cut.png": png_bytes(noise)[:2000],
        "2/cut.jpg": png_bytes(noise, "JPEG")[:400],
    }  # fmt: skip
    for name, data in bad.items():
        (root / name).write_bytes(data)
    # A 16-bit image is fine (scaled to 8 bits); an empty class folder and a class
    # below the minimum are dropped with a line in the job log.
    (root / "2" / "deep.png").write_bytes(png_bytes(np.full((8, 8), 65535, np.uint16)))
    (root / "3").mkdir()
    (root / "4").mkdir()
    (root / "4" / "lonely.png").write_bytes(png_bytes(digits.images[4]))
    options = {
        "source": "folder", "folder": str(root), "image_type": "grayscale", "width": 8,
        "height": 8, "val_percent": 0, "min_per_class": 2,
    }  # fmt: skip
    api = api_client.as_user(people.owner)
    lenient = post_json(api, options, name="lenient", max_error_percent=20)
    strict = post_json(api, options, name="strict", max_error_percent=0)

    dataset = finished(lenient)
    assert dataset.status == "ready", dataset.job.error
    manifest = dataset.manifest
    assert manifest["label_names"] == ["0", "1", "2"]
    assert class_counts(manifest)["train"] == {"0": 10, "1": 10, "2": 11}
    errors = {e["entry"].rsplit("/", 2)[-2] + "/" + e["entry"].rsplit("/", 1)[-1]: e["error"]
              for e in manifest["errors"]}  # fmt: skip
    assert set(errors) == set(bad)
    for name in ("0/bomb.png", "0/big.png"):
        assert errors[name].startswith(f"{root}/{name}: refused by the decompression-bomb")
    assert (
        errors["1/notes.png"]
        == f"{root}/1/notes.png is not an image in a supported format (png, jpg, bmp, ppm, pgm, tif)"
    )
    for name in ("1/cut.png", "2/cut.jpg"):
        assert errors[name].startswith(f"{root}/{name} is corrupt or truncated")
    stored = stored_entries(dataset)
    assert stored[(2, np.full((8, 8, 1), 255, np.uint8).tobytes())] == 1  # the 16-bit image
    assert stored - originals(digits, sum(written.values(), [])) == Counter(
        {(2, np.full((8, 8, 1), 255, np.uint8).tobytes()): 1}
    )
    log = job_log(dataset)
    assert f"Class folder '3' in the training folder {root} has no images; skipped" in log
    assert "Class '4': only 1 image(s)" in log and "minimum of 2 per class; dropped" in log

    dataset = finished(strict)
    assert dataset.status == "error"
    assert (
        "5 of 36 entries (13.9 %) could not be encoded, more than the allowed 0 %"
        in dataset.job.error
    )
    assert list(get_store().list(dataset.data_prefix)) == []


def test_unsafe_archives_and_sources_without_two_classes_fail_and_publish_nothing(
    api_client, people, data_root, tmp_path, worker, digits, settings
):
    settings.DIGITS_MAX_ARCHIVE_BYTES = 20_000
    settings.DIGITS_MAX_ARCHIVE_MEMBERS = 50
    good = digit_members(digits, classes=(0, 1), per_class=3)
    zeros = [(f"0/{i}.png", bytes(10_000)) for i in range(3)]
    many = [(f"{i % 2}/{i}.png", b"x") for i in range(60)]
    cases = {
        "dotdot.zip": ([*good, ("../evil.png", b"x")], "member '../evil.png' has a '..' path component; refused"),
        "absolute.zip": ([*good, ("/tmp/evil.png", b"x")], "member '/tmp/evil.png' has an absolute path; refused"),
        "symlink.tar.gz": ([*good, ("1/link.png", Special(tarfile.SYMTYPE, "/etc/passwd"))], "member '1/link.png' is a symbolic link; refused"),
        "device.tar.gz": ([*good, ("1/null", Special(tarfile.CHRTYPE))], "member '1/null' is a device; refused"),
        "big.zip": (zeros, "uncompressed size exceeds 20000 bytes (DIGITS_MAX_ARCHIVE_BYTES) at member '0/2.png'"),
        "many.zip": (many, "more than 50 members (DIGITS_MAX_ARCHIVE_MEMBERS) at member '0/50.png'"),
    }  # fmt: skip
    api = api_client.as_user(people.owner)
    submitted = {}
    for name, (members, message) in cases.items():
        path = tmp_path / name
        if name.endswith(".zip"):
            make_zip(path, members)
        else:
            make_tar(path, members)
        file = SimpleUploadedFile(name, path.read_bytes())
        submitted[name] = (
            post_multipart(api, {"source": "archive"}, {"archive": file}, name=name),
            message,
        )

    digits.write_folder(data_root / "single", classes=(7,), per_class=5)
    (data_root / "single" / "8").mkdir()
    single = post_json(
        api, {"source": "folder", "folder": str(data_root / "single")}, name="single"
    )
    submitted["single"] = (
        single,
        f"Image classification needs at least 2 classes with images; the training folder "
        f"{data_root / 'single'} has 1 (7)",
    )
    listing = data_root / "one-class.txt"
    digits.write_folder(data_root / "pool", classes=(1,), per_class=3)
    listing.write_text("".join(f"{p} 1\n" for p in sorted((data_root / "pool" / "1").iterdir())))
    one_class = post_multipart(
        api,
        {"source": "list", "train_list_path": str(listing)},
        {"labels_file": SimpleUploadedFile("labels.txt", b"cat\ndog\n")},
        name="one class",
    )
    submitted["one class"] = (one_class, f"the training list {listing} has 1 (dog)")

    # A server path outside the allowed roots never becomes a job.
    reply = api.post(
        "/api/v1/datasets/",
        {"type": TYPE, "name": "x", "options": {"source": "folder", "folder": str(tmp_path)}},
        format="json",
    )
    assert reply.status_code == 400
    assert "outside the folders this server may read from" in json.dumps(reply.json())

    for name, (pk, message) in submitted.items():
        dataset = finished(pk)
        assert dataset.status == "error", name
        assert message in dataset.job.error, (name, dataset.job.error)
        assert list(get_store().list(dataset.data_prefix)) == [], name
    assert not (tmp_path / "evil.png").exists()
