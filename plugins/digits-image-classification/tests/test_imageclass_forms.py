"""The dataset form: what it accepts, what it refuses and with which message."""

import io
import uuid
import zipfile

import pytest
from digits_imageclass.forms import ImageClassificationForm
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict

from apps.core.storage import get_store


def upload(name, data: bytes):
    return SimpleUploadedFile(name, data)


def zip_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a/1.png", b"x")
    return buffer.getvalue()


def clean(data, files=None):
    form = ImageClassificationForm(data=data, files=files)
    form.is_valid()
    return form


@pytest.fixture
def folder(data_root):
    (data_root / "imgs").mkdir()
    return data_root / "imgs"


def test_rest_options_need_only_the_source_and_take_the_defaults(folder):
    form = clean({"source": "folder", "folder": str(folder)})
    assert form.errors == {}
    d = form.cleaned_data
    assert d["folder"] == str(folder)
    assert (d["width"], d["height"], d["resize_mode"], d["image_type"]) == (
        256,
        256,
        "squash",
        "color",
    )
    assert (d["encoding"], d["val_percent"], d["test_percent"], d["min_per_class"]) == (
        "png",
        25,
        0,
        2,
    )
    assert d["shuffle"] is True and d["mean_image"] is True and d["max_per_class"] is None


def test_html_checkboxes_left_unchecked_are_off(folder):
    form = clean(QueryDict(f"source=folder&folder={folder}"))
    assert form.errors == {}
    assert form.cleaned_data["shuffle"] is False and form.cleaned_data["mean_image"] is False
    form = clean({"source": "folder", "folder": str(folder), "mean_image": False})
    assert form.cleaned_data["mean_image"] is False


def test_server_folders_outside_the_roots_are_refused(tmp_path, data_root):
    (tmp_path / "elsewhere").mkdir()
    form = clean({"source": "folder", "folder": str(tmp_path / "elsewhere")})
    assert "outside the folders this server may read from" in form.errors["folder"][0]
    form = clean({"source": "folder", "folder": "/etc"})
    assert "outside the folders" in form.errors["folder"][0]
    form = clean({"source": "folder", "folder": str(data_root / "nope")})
    assert form.errors["folder"] == [f"Folder {data_root / 'nope'} does not exist on the server."]


def test_the_chosen_source_is_required(folder):
    assert clean({"source": "folder"}).errors == {
        "folder": ["Give the server folder of the training images."]
    }
    assert "archive" in clean({"source": "archive"}).errors
    assert "prefix" in clean({"source": "store"}).errors
    errors = clean({"source": "list"}).errors
    assert "train_list" in errors and "labels_file" in errors
    assert "source" in clean({"folder": str(folder)}).errors


def test_other_sources_fields_are_neither_checked_nor_kept(folder):
    files = {"archive": upload("a.zip", zip_bytes())}
    form = clean({"source": "folder", "folder": str(folder), "prefix": "/etc"}, files)
    assert form.errors == {}
    assert form.cleaned_data["archive"] is None and form.cleaned_data["prefix"] is None


def test_archives_must_be_zip_or_tar_and_carry_the_limits(settings):
    settings.DIGITS_MAX_ARCHIVE_BYTES = 1234
    form = clean({"source": "archive"}, {"archive": upload("a.zip", zip_bytes())})
    assert form.errors == {}
    assert form.cleaned_data["archive_limits"] == {"max_bytes": 1234, "max_members": 1_000_000}
    form = clean({"source": "archive"}, {"archive": upload("notes.zip", b"plain text")})
    assert form.errors["archive"] == ["notes.zip is neither a zip nor a tar archive."]


def test_a_separate_validation_source_replaces_the_percentage(folder):
    form = clean(
        {"source": "folder", "folder": str(folder), "val_folder": str(folder), "val_percent": 30,
         "test_percent": 10},
    )  # fmt: skip
    assert form.cleaned_data["val_percent"] == 0 and form.cleaned_data["test_percent"] == 10


def test_numbers_are_checked(folder):
    base = {"source": "folder", "folder": str(folder)}
    assert "width" in clean({**base, "width": 0}).errors
    assert "height" in clean({**base, "height": 4097}).errors
    assert "test_percent" in clean({**base, "val_percent": 60, "test_percent": 40}).errors
    assert "max_per_class" in clean({**base, "min_per_class": 5, "max_per_class": 4}).errors
    assert "resize_mode" in clean({**base, "resize_mode": "stretch"}).errors


@pytest.mark.parametrize("where", ["upload", "server"])
def test_duplicate_labels_are_a_form_error_naming_the_duplicate(data_root, where):
    text = b"cat\ndog\nbird\ndog\n"
    listing = data_root / "train.txt"
    listing.write_text("a.png 0\n")
    data, files = {"source": "list", "train_list_path": str(listing)}, {}
    if where == "upload":
        files["labels_file"] = upload("labels.txt", text)
        field = "labels_file"
    else:
        (data_root / "labels.txt").write_bytes(text)
        data["labels_file_path"] = str(data_root / "labels.txt")
        field = "labels_file_path"
    errors = clean(data, files).errors
    assert len(errors[field]) == 1
    assert "duplicate label 'dog' (lines 2 and 4)" in errors[field][0]


def test_a_good_labels_file_travels_as_names(data_root):
    form = clean(
        {"source": "list"},
        {"train_list": upload("train.txt", b"a.png 0\n"), "labels_file": upload("l.txt", b"\xef\xbb\xbfcat\ndog\n\n")},
    )  # fmt: skip
    assert form.errors == {}
    assert form.cleaned_data["labels"] == ["cat", "dog"]
    assert form.cleaned_data["labels_file"] is None  # not stored: the names are in the options


@pytest.mark.parametrize(
    "text, message",
    [(b"cat\n\ndog\n", "line 2 is empty"), (b"cat\n", "names 1 class(es)"), (b"\xff\xfe", "not UTF-8")],
)  # fmt: skip
def test_bad_labels_files_are_refused(text, message):
    errors = clean(
        {"source": "list"},
        {"train_list": upload("t.txt", b"a.png 0\n"), "labels_file": upload("l.txt", text)},
    ).errors
    assert message in errors["labels_file"][0]


def test_a_list_is_uploaded_or_named_not_both(data_root):
    listing = data_root / "train.txt"
    listing.write_text("a.png 0\n")
    errors = clean(
        {"source": "list", "train_list_path": str(listing), "labels_file_path": str(listing)},
        {"train_list": upload("t.txt", b"a.png 0\n")},
    ).errors
    assert "not both" in errors["train_list_path"][0]
    errors = clean({"source": "list", "train_list_path": "/etc/passwd"}).errors
    assert "outside the folders" in errors["train_list_path"][0]


def test_store_prefixes_are_confined_to_the_import_prefixes(settings):
    prefix = f"imports/form-{uuid.uuid4().hex}/"
    get_store().put(prefix + "a/1.png", b"x")
    try:
        form = clean({"source": "store", "prefix": prefix.rstrip("/")})
        assert form.errors == {} and form.cleaned_data["prefix"] == prefix
        errors = clean({"source": "store", "prefix": "jobs/1/"}).errors
        assert "outside the store prefixes" in errors["prefix"][0]
        assert "imports/" in errors["prefix"][0]
        errors = clean({"source": "store", "prefix": prefix + "nothing/"}).errors
        assert errors["prefix"] == [f"Nothing is stored below {prefix}nothing/."]
        settings.DIGITS_IMPORT_PREFIXES = ["shared/"]
        assert "outside" in clean({"source": "store", "prefix": prefix}).errors["prefix"][0]
    finally:
        get_store().delete_prefix(prefix)
