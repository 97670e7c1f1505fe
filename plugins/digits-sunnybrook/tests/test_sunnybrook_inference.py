"""The Sunnybrook inference form and inference entries: an uploaded DICOM slice (with its
contour file as the ground truth) encoded as the dataset encodes its slices, or a record
of the validation stage left to the platform (``DatasetRecord``)."""

import numpy as np
import pytest
from digits_sunnybrook.data import SunnybrookData, UploadedSlice, rasterise_contour
from digits_sunnybrook.forms import SunnybrookInferenceForm
from digits_sunnybrook.testing import ellipse_mask, ellipse_points, write_contour, write_dicom
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.plugins import INFERENCE, VAL, DatasetRecord

VENTRICLE = (20.0, 18.0, 8.0, 6.0)


@pytest.fixture
def slice_files(tmp_path):
    pixels = np.where(ellipse_mask(VENTRICLE, 40) == 1, 3000, 300).astype(np.uint16)
    dicom = write_dicom(tmp_path / "IM-0001-0020.dcm", pixels)
    contour = write_contour(
        tmp_path / "IM-0001-0020-icontour-manual.txt", ellipse_points(VENTRICLE)
    )
    return dicom, contour


def uploaded(path):
    return SimpleUploadedFile(path.name, path.read_bytes())


def cleaned(**files):
    form = SunnybrookInferenceForm({}, {k: uploaded(v) for k, v in files.items()})
    assert form.is_valid(), form.errors
    return form.cleaned_data


def test_an_upload_with_its_contour_is_encoded_with_its_mask(slice_files):
    dicom, contour = slice_files
    data = SunnybrookData(is_inference_db=True, channel_conversion="L",
                          **cleaned(dicom_file=dicom, contour_file=contour))  # fmt: skip
    [entry] = data.itemize_entries(INFERENCE)
    assert entry == UploadedSlice(dicom.name, contour.name)
    features, mask = data.encode_entry(entry)
    assert features.shape == (40, 40, 1) and features.dtype == np.uint8
    truth = ellipse_mask(VENTRICLE, 40)
    assert (features[..., 0][truth == 1] == 255).all() and (features[..., 0][truth == 0] == 0).all()
    # The contour rasterised as the dataset's entries are: every pixel inside is set.
    expected = rasterise_contour(np.array(ellipse_points(VENTRICLE)), (40, 40), "c")
    assert mask.shape == (40, 40) and (mask == expected).all() and (mask[truth == 1] == 1).all()


def test_the_dataset_s_size_applies_to_an_upload_without_contour(slice_files):
    data = SunnybrookData(is_inference_db=True, resize_width=32, resize_height=32,
                          **cleaned(dicom_file=slice_files[0]))  # fmt: skip
    features, mask = data.encode_entry(data.itemize_entries(INFERENCE)[0])
    assert features.shape == (32, 32, 1) and mask is None


def test_a_validation_record_is_left_to_the_platform():
    form = SunnybrookInferenceForm({"validation_record": "4"})
    assert form.is_valid(), form.errors
    data = SunnybrookData(is_inference_db=True, **form.cleaned_data)
    assert data.itemize_entries(INFERENCE) == [DatasetRecord(VAL, 4)]


def test_a_contour_needs_its_image_and_must_be_a_contour(slice_files, tmp_path):
    form = SunnybrookInferenceForm({}, {"contour_file": uploaded(slice_files[1])})
    assert not form.is_valid()
    assert form.errors["contour_file"] == ["A contour file goes with an uploaded DICOM image."]
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2\n3 four\n")
    form = SunnybrookInferenceForm(
        {}, {"dicom_file": uploaded(slice_files[0]), "contour_file": uploaded(bad)}
    )
    assert not form.is_valid()
    assert "bad.txt, line 2" in form.errors["contour_file"][0]
