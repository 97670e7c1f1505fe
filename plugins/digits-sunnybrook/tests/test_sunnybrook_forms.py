"""The dataset and inference forms, and the pages that show them."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from digits_sunnybrook.forms import SunnybrookForm, SunnybrookInferenceForm
from digits_sunnybrook.testing import COMPRESSED, make_tree, write_dicom
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.data import get_testdata_file


def test_folders_are_required_and_the_rest_defaults(data_root):
    tree = make_tree(data_root, slices=1)
    form = SunnybrookForm({"image_folder": str(tree.images), "contour_folder": str(tree.contours)})
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {
        "source": "folder", "archive": None,
        "image_folder": str(tree.images.resolve()), "contour_folder": str(tree.contours.resolve()),
        "channel_conversion": "L", "val_percent": 10, "test_percent": 0, "seed": 0, "series": {},
        "intensity": "minmax", "bit_depth": 8, "window_center": None, "window_width": None,
        "percentile_low": 0.5, "percentile_high": 99.5,
        "resize_width": None, "resize_height": None, "resize_mode": "squash",
    }  # fmt: skip
    empty = SunnybrookForm({})
    assert not empty.is_valid() and set(empty.errors) == {"image_folder", "contour_folder"}
    assert empty.errors["image_folder"] == ["Give the folder of the DICOM images."]


def test_a_missing_folder_is_an_error_naming_it(data_root):
    tree = make_tree(data_root, slices=1)
    missing = data_root / "no-such-contours"
    form = SunnybrookForm({"image_folder": str(tree.images), "contour_folder": str(missing)})
    assert not form.is_valid()
    assert form.errors["contour_folder"] == [f"Folder {missing} does not exist on the server."]


def test_folders_outside_the_allowed_roots_are_refused(data_root, tmp_path):
    outside = tmp_path / "private"
    outside.mkdir()
    form = SunnybrookForm({"image_folder": str(outside), "contour_folder": "/etc"})
    assert not form.is_valid()
    for name in ("image_folder", "contour_folder"):
        assert "is outside the folders this server may read from" in form.errors[name][0]
        assert str(data_root.resolve()) in form.errors[name][0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("val_percent", "51", "less than or equal to 50"),
        ("val_percent", "-1", "greater than or equal to 0"),
        ("channel_conversion", "CMYK", "Select a valid choice"),
        ("seed", "-3", "greater than or equal to 0"),
        ("series", "SC-HF-I-1:0004", "is not case=series"),
        ("test_percent", "60", "less than or equal to 50"),
        ("intensity", "gamma", "Select a valid choice"),
        ("bit_depth", "12", "Select a valid choice"),
        ("window_width", "0.5", "greater than or equal to 1"),
        ("percentile_high", "101", "less than or equal to 100"),
        ("resize_width", "4", "greater than or equal to 8"),
        ("resize_mode", "stretch", "Select a valid choice"),
    ],
)
def test_out_of_range_options_are_form_errors(data_root, field, value, message):
    tree = make_tree(data_root, slices=1)
    data = {"image_folder": str(tree.images), "contour_folder": str(tree.contours), field: value}
    form = SunnybrookForm(data)
    assert not form.is_valid() and message in form.errors[field][0]


def test_series_pairs_are_parsed(data_root):
    tree = make_tree(data_root, slices=1)
    form = SunnybrookForm(
        {
            "image_folder": str(tree.images), "contour_folder": str(tree.contours),
            "series": "SC-HF-I-1=0004, SC-HF-I-2=0106\nSC-N-3=915",
        }
    )  # fmt: skip
    assert form.is_valid(), form.errors
    assert form.cleaned_data["series"] == {"SC-HF-I-1": 4, "SC-HF-I-2": 106, "SC-N-3": 915}


# --- inference form -------------------------------------------------------------------------
def upload(name, content):
    return SimpleUploadedFile(name, content, content_type="application/dicom")


def test_an_uploaded_dicom_image_is_accepted(tmp_path):
    path = write_dicom(tmp_path / "slice.dcm", np.arange(256, dtype=np.uint16).reshape(16, 16))
    form = SunnybrookInferenceForm({}, {"dicom_file": upload("slice.dcm", path.read_bytes())})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["dicom_file"].read(132)[128:] == b"DICM"  # rewound for later use
    mr = get_testdata_file("MR_small.dcm")
    with open(mr, "rb") as f:
        assert SunnybrookInferenceForm({}, {"dicom_file": upload("mr.dcm", f.read())}).is_valid()


@pytest.mark.parametrize(
    "options", [{"syntax": s} for s in COMPRESSED] + [{"preamble": False}], ids=repr
)
def test_compressed_and_preamble_less_uploads_are_accepted(tmp_path, options):
    pixels = np.arange(4096, dtype=np.uint16).reshape(64, 64)  # JPEG 2000 wants 64 × 64 or more
    path = write_dicom(tmp_path / "s.dcm", pixels, **options)
    form = SunnybrookInferenceForm({}, {"dicom_file": upload("s.dcm", path.read_bytes())})
    assert form.is_valid(), form.errors


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (b"just text\n", "notes.dcm is not a readable DICOM file"),
        ("no_meta_group_length.dcm", "notes.dcm has no pixel data"),
        ("MR_truncated.dcm", "notes.dcm: the pixel data cannot be decoded"),
    ],
)
def test_an_upload_that_is_not_a_dicom_image_is_a_form_error(source, message):
    content = source if isinstance(source, bytes) else Path(get_testdata_file(source)).read_bytes()
    form = SunnybrookInferenceForm({}, {"dicom_file": upload("notes.dcm", content)})
    assert not form.is_valid()
    assert message in form.errors["dicom_file"][0]


def test_inference_takes_exactly_one_input(tmp_path):
    assert SunnybrookInferenceForm({"validation_record": "3"}).is_valid()
    assert not SunnybrookInferenceForm({"validation_record": "-1"}).is_valid()
    neither = SunnybrookInferenceForm({})
    assert not neither.is_valid() and "not both" in neither.non_field_errors()[0]
    path = write_dicom(tmp_path / "slice.dcm", np.ones((4, 4), np.uint16))
    both = SunnybrookInferenceForm(
        {"validation_record": "0"}, {"dicom_file": upload("s.dcm", path.read_bytes())}
    )
    assert not both.is_valid() and "not both" in both.non_field_errors()[0]


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"intensity": "fixed", "window_width": "400"}, "window_center",
         "Give the center of the fixed window."),
        ({"intensity": "fixed", "window_center": "40"}, "window_width",
         "Give the width of the fixed window."),
        ({"intensity": "percentile", "percentile_low": "90", "percentile_high": "10"},
         "percentile_high", "The high percentile must be above the low one."),
        ({"intensity": "raw"}, "intensity",
         "Stored values need 16-bit features: choose 16 bits or another mapping."),
        ({"resize_width": "64"}, "resize_height", "Give the height too, or neither."),
        ({"resize_height": "64"}, "resize_width", "Give the width too, or neither."),
        ({"val_percent": "50", "test_percent": "50"}, "test_percent",
         "Validation and test must leave cases for training."),
    ],
)  # fmt: skip
def test_options_that_do_not_fit_together_are_errors_on_their_field(
    data_root, extra, field, message
):
    tree = make_tree(data_root, slices=1)
    data = {"image_folder": str(tree.images), "contour_folder": str(tree.contours), **extra}
    form = SunnybrookForm(data)
    assert not form.is_valid() and form.errors == {field: [message]}


def test_intensity_and_size_options_are_cleaned(data_root):
    tree = make_tree(data_root, slices=1)
    form = SunnybrookForm({
        "image_folder": str(tree.images), "contour_folder": str(tree.contours),
        "intensity": "fixed", "window_center": "40", "window_width": "400", "bit_depth": "16",
        "resize_width": "128", "resize_height": "96", "resize_mode": "pad",
    })  # fmt: skip
    assert form.is_valid(), form.errors
    cleaned = form.cleaned_data
    assert (cleaned["intensity"], cleaned["window_center"], cleaned["window_width"]) == (
        "fixed",
        40.0,
        400.0,
    )
    assert cleaned["bit_depth"] == 16 and (cleaned["resize_width"], cleaned["resize_height"]) == (
        128,
        96,
    )
    raw = SunnybrookForm({"image_folder": str(tree.images), "contour_folder": str(tree.contours),
                          "intensity": "raw", "bit_depth": "16"})  # fmt: skip
    assert raw.is_valid(), raw.errors


def test_an_archive_source_needs_an_archive_and_ignores_the_folders(data_root, settings):
    settings.DIGITS_MAX_ARCHIVE_BYTES = 12345
    form = SunnybrookForm({"source": "archive", "image_folder": "/etc"})
    assert not form.is_valid() and form.errors == {
        "archive": ["Upload a zip or tar archive of the two folders."]
    }
    text = SimpleUploadedFile("scans.zip", b"not an archive")
    form = SunnybrookForm({"source": "archive"}, {"archive": text})
    assert not form.is_valid()
    assert form.errors == {"archive": ["scans.zip is neither a zip nor a tar archive."]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("images/SC-N-2/IM-0004-0020.dcm", b"x")
    upload = SimpleUploadedFile("scans.zip", buffer.getvalue())
    form = SunnybrookForm({"source": "archive", "image_folder": "/etc"}, {"archive": upload})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["image_folder"] is None and form.cleaned_data["archive"] is upload
    assert form.cleaned_data["archive_limits"]["max_bytes"] == 12345


# --- pages ----------------------------------------------------------------------------------
def test_the_new_dataset_page_explains_the_layout(client, people):
    client.force_login(people.owner)
    page = client.get("/datasets/new/image-sunnybrook/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="sunnybrook-layout"' in html and "contours-manual/IRCCI-expert" in html
    assert 'id="sunnybrook-split"' in html and "by case (patient), never by" in html
    for name in (
        "source", "image_folder", "contour_folder", "archive", "channel_conversion",
        "val_percent", "test_percent", "seed", "intensity", "bit_depth", "window_center",
        "window_width", "percentile_low", "percentile_high", "resize_width", "resize_height",
        "resize_mode",
    ):  # fmt: skip
        assert f'name="data-{name}"' in html
    assert 'type="file" name="data-archive"' in html
    assert 'name="dataset-name"' in html


def test_the_inference_template_renders_the_form():
    from digits_sunnybrook.data import SunnybrookData
    from django.template.loader import render_to_string

    cls = SunnybrookData
    form = cls.get_inference_form()(prefix="inference")
    name, context = cls.get_inference_template(form)
    html = render_to_string(name, context)
    assert 'id="sunnybrook-inference"' in html
    assert 'type="file" name="inference-dicom_file"' in html
    assert 'name="inference-validation_record"' in html


def test_the_api_describes_the_options(api_client, people):
    types = api_client.as_user(people.owner).get("/api/v1/dataset-types/").json()
    sunnybrook = next(t for t in types if t["id"] == "image-sunnybrook")
    assert sunnybrook["title"] == "Sunnybrook LV segmentation"
    assert sunnybrook["category"] == "Images" and sunnybrook["plugin"] == "sunnybrook"
    assert sunnybrook["options"]["image_folder"]["required"] is False  # or an archive
    assert sunnybrook["options"]["intensity"]["choices"] == [
        "minmax", "window", "fixed", "percentile", "raw"
    ]  # fmt: skip
    assert sunnybrook["options"]["channel_conversion"]["choices"] == ["L", "RGB"]
