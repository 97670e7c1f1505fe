"""Listing, splitting and encoding entries in-process (what the job does, without a worker)."""

import uuid
from collections import Counter

import numpy as np
import pytest
from digits_imageclass.data import ImageClassification
from digits_imageclass.plan import split_counts
from digits_imageclass.sources import SERVER, Entry, check_import_prefix
from imageclass_helpers import png_bytes

from apps.core.plugins import EntryError
from apps.core.storage import get_store

BASE = {
    "source": "folder", "image_type": "grayscale", "width": 4, "height": 4,
    "resize_mode": "squash", "encoding": "png", "val_percent": 0, "test_percent": 0,
    "shuffle": False, "seed": 0, "min_per_class": 1, "max_per_class": None, "mean_image": True,
}  # fmt: skip


def image(value: int, size=(4, 4)) -> bytes:
    return png_bytes(np.full(size, value, np.uint8))


def write(folder, names, value=0):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(image(value))


def stages(**options):
    ingestion = ImageClassification(**{**BASE, **options})
    return ingestion, {s: ingestion.itemize_entries(s) for s in ("train", "val", "test")}


@pytest.mark.parametrize(
    "n, val, test, expected",
    [
        (100, 25, 0, (75, 25, 0)), (100, 10, 10, (80, 10, 10)), (178, 25, 10, (115, 45, 18)),
        (7, 10, 10, (5, 1, 1)), (2, 25, 0, (1, 1, 0)), (2, 25, 25, (1, 1, 0)),
        (1, 50, 0, (1, 0, 0)), (3, 0, 0, (3, 0, 0)), (3, 99, 0, (1, 2, 0)),
    ],
)  # fmt: skip
def test_split_counts_round_up_and_keep_one_for_training(n, val, test, expected):
    assert split_counts(n, val, test) == expected


@pytest.fixture
def tree(data_root):
    """cat: 6 images (2 nested), dog: 3, eel: 1, fox: empty; plus debris to ignore."""
    root = data_root / "pets"
    write(root / "cat", ["c1.png", "c2.jpg", "c3.png", "c4.png"], 10)
    write(root / "cat" / "indoor" / "sofa", ["c5.PNG", "c6.bmp"], 10)
    write(root / "dog", ["d1.png", "d2.png", "d3.png"], 20)
    write(root / "eel", ["e1.png"], 30)
    (root / "fox").mkdir()
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "cat" / ".DS_Store").write_bytes(b"junk")
    (root / ".hidden").mkdir()
    (root / "stray.png").write_bytes(image(0))
    return root


def test_classes_are_the_folders_with_enough_images(tree, capsys):
    ingestion, found = stages(folder=str(tree), min_per_class=2)
    assert ingestion.get_label_names() == ["cat", "dog"]
    assert [len(found[s]) for s in ("train", "val", "test")] == [9, 0, 0]
    by_label = Counter(e.label for e in found["train"])
    assert by_label == {0: 6, 1: 3}
    names = sorted(e.name for e in found["train"] if e.label == 0)
    assert names[-2:] == [f"{tree}/cat/indoor/sofa/c5.PNG", f"{tree}/cat/indoor/sofa/c6.bmp"]
    log = capsys.readouterr().out
    assert "Class folder 'fox'" in log and "has no images; skipped" in log
    assert "Class 'eel': only 1 image(s)" in log and "minimum of 2 per class; dropped" in log
    assert "1 file(s) directly in" in log


def test_split_is_per_class_and_in_name_order_without_shuffle(tree):
    _, found = stages(folder=str(tree), val_percent=34, test_percent=20)
    # cat 6 → val ceil(2.04)=3, test ceil(1.2)=2, train 1; dog 3 → val 2, test 0 (one
    # must stay for training), train 1; eel 1 → train only.
    counts = {s: Counter(e.label for e in found[s]) for s in found}
    assert counts == {"train": {0: 1, 1: 1, 2: 1}, "val": {0: 3, 1: 2}, "test": {0: 2}}
    assert [e.name.rsplit("/", 1)[1] for e in found["val"][:3]] == ["c1.png", "c2.jpg", "c3.png"]


def test_max_per_class_truncates_and_the_seed_fixes_the_shuffle(tree, capsys):
    _, first = stages(folder=str(tree), max_per_class=2, shuffle=True, seed=3, val_percent=50)
    _, again = stages(folder=str(tree), max_per_class=2, shuffle=True, seed=3, val_percent=50)
    assert first == again
    assert Counter(e.label for e in first["train"] + first["val"]) == {0: 2, 1: 2, 2: 1}
    assert "Class 'cat': 6 images in" in capsys.readouterr().out
    orders = {
        tuple(e.name for e in stages(folder=str(tree), shuffle=True, seed=s)[1]["train"])
        for s in range(5)
    }
    assert len(orders) > 1 and len({frozenset(o) for o in orders}) == 1


def test_a_separate_validation_folder_replaces_the_percentage(tree, data_root, capsys):
    val = data_root / "pets-val"
    write(val / "dog", ["v1.png", "v2.png"])
    write(val / "zebra", ["z.png"])
    _, found = stages(folder=str(tree), val_folder=str(val), val_percent=0)
    assert Counter(e.label for e in found["val"]) == {1: 2}
    assert len(found["train"]) == 10
    assert "Class folder 'zebra'" in capsys.readouterr().out


def test_one_class_is_not_enough(data_root):
    write(data_root / "one" / "cat", ["1.png", "2.png"])
    (data_root / "one" / "dog").mkdir()
    with pytest.raises(ValueError, match=r"at least 2 classes with images; .* has 1 \(cat\)"):
        stages(folder=str(data_root / "one"))
    (data_root / "none").mkdir()
    with pytest.raises(ValueError, match="has none"):
        stages(folder=str(data_root / "none"))


def test_folders_outside_the_roots_fail_in_the_job_too(tmp_path, data_root):
    write(tmp_path / "outside" / "a", ["1.png"])
    with pytest.raises(ValueError, match="outside the folders this server may read from"):
        stages(folder=str(tmp_path / "outside"))


def test_text_lists_use_the_labels_file_indices(data_root, capsys):
    images = data_root / "imgs"
    write(images, ["a1.png", "a2.png", "a 3.png"], 5)
    write(images / "sub", ["b1.png", "b2.png"], 6)
    listing = data_root / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text(
        "# path label\n"
        "a1.png 0\na2.png 0\na 3.png 0\n\n"
        f"{images}/sub/b1.png 1\nsub/b2.png 1\n"
        "missing.png 1\nno-label.png\nc.png 7\n"
    )
    ingestion, found = stages(
        source="list", train_list_path=str(listing), path_prefix=str(images),
        labels=["ant", "bee", "cow"],
    )  # fmt: skip
    assert ingestion.get_label_names() == ["ant", "bee", "cow"]
    entries = [e for e in found["train"] if isinstance(e, Entry)]
    errors = [str(e) for e in found["train"] if isinstance(e, EntryError)]
    assert Counter(e.label for e in entries) == {0: 3, 1: 3}
    assert f"{images}/a 3.png" in {e.location for e in entries}
    assert errors == [
        f"{listing} line 9: expected 'path label', got 'no-label.png'",
        f"{listing} line 10: label 7 is not a line of the labels file (0..2)",
    ]
    assert "Class 'cow' has no images in the training list" in capsys.readouterr().out
    missing = next(e for e in entries if e.name.endswith("missing.png"))
    with pytest.raises(EntryError, match=r"imgs/missing.png: no such file"):
        ingestion.encode_entry(missing)


def test_relative_list_paths_default_to_the_list_folder(data_root):
    write(data_root / "x", ["1.png", "2.png", "3.png", "4.png"])
    (data_root / "x" / "list.txt").write_text("1.png 0\n2.png 0\n3.png 1\n4.png 1\n")
    _, found = stages(
        source="list", train_list_path=str(data_root / "x" / "list.txt"), labels=["a", "b"],
        val_percent=50,
    )  # fmt: skip
    assert {e.location for e in found["train"] + found["val"]} == {
        str(data_root / "x" / f"{i}.png") for i in range(1, 5)
    }
    assert Counter(e.label for e in found["val"]) == {0: 1, 1: 1}


def test_encode_entry_reads_converts_and_resizes(tree):
    ingestion, found = stages(folder=str(tree), image_type="color", width=6, height=3)
    picture, label = ingestion.encode_entry(found["train"][0])
    # A Pillow image (the job encodes it without an array round trip).
    assert picture.mode == "RGB" and picture.size == (6, 3) and label == 0
    assert (np.asarray(picture) == 10).all()


def test_server_entries_are_confined_when_opened(tree, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(image(1))
    (tree / "cat" / "link.png").symlink_to(secret)
    ingestion, found = stages(folder=str(tree))
    link = next(e for e in found["train"] if e.name.endswith("link.png"))
    with pytest.raises(EntryError, match=r"link.png: .* is outside the folders this server"):
        ingestion.encode_entry(link)
    with pytest.raises(EntryError, match=r"outside"):
        ingestion.encode_entry(Entry(SERVER, "/etc/passwd", "/etc/passwd", 0))


def test_store_prefixes_list_classes_below_an_import_prefix(db):
    prefix = f"imports/test-{uuid.uuid4().hex}/"
    store = get_store()
    for key, value in [("a/1.png", 1), ("a/deep/2.png", 2), ("b/3.png", 3), ("b/4.png", 4)]:
        store.put(prefix + key, image(value))
    store.put(prefix + "b/readme.txt", b"text")
    store.put(prefix + "top.png", image(0))
    try:
        ingestion, found = stages(source="store", prefix=prefix.rstrip("/"), val_percent=50)
        assert ingestion.get_label_names() == ["a", "b"]
        assert sorted(e.location for e in found["train"] + found["val"]) == [
            prefix + k for k in ("a/1.png", "a/deep/2.png", "b/3.png", "b/4.png")
        ]
        entry = next(e for e in found["train"] + found["val"] if e.name.endswith("3.png"))
        picture, label = ingestion.encode_entry(entry)
        assert label == 1 and (np.asarray(picture) == 3).all()
    finally:
        store.delete_prefix(prefix)
    for outside in ("jobs/1/", "uploads/x", "_staging/jobs/1", "importsx/a"):
        with pytest.raises(ValueError, match="outside the store prefixes"):
            check_import_prefix(outside)
    with pytest.raises(ValueError, match="not a valid store prefix"):
        check_import_prefix("imports/../jobs")


def test_a_separate_list_keeps_only_the_classes_the_training_list_kept(data_root, capsys):
    write(data_root / "p", [f"{i}.png" for i in range(8)])
    (data_root / "train.txt").write_text("0.png 0\n1.png 0\n2.png 1\n3.png 1\n4.png 2\n")
    (data_root / "val.txt").write_text("5.png 0\n6.png 1\n7.png 2\nbad line\n")
    _, found = stages(
        source="list", train_list_path=str(data_root / "train.txt"),
        val_list_path=str(data_root / "val.txt"), path_prefix=str(data_root / "p"),
        labels=["a", "b", "c"], min_per_class=2, val_percent=0,
    )  # fmt: skip
    assert Counter(e.label for e in found["train"]) == {0: 2, 1: 2}
    assert [e.label for e in found["val"] if isinstance(e, Entry)] == [0, 1]
    assert [str(e) for e in found["val"] if isinstance(e, EntryError)] == [
        f"{data_root}/val.txt line 4: expected 'path label', got 'bad line'"
    ]
    assert f"1 line(s) of the validation list {data_root}/val.txt name classes" in (
        capsys.readouterr().out
    )
