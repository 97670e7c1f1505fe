"""The options of a Sunnybrook dataset, and the choice of an inference input."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

from apps.core.plugins import EntryError, ServerFolderField
from digits_sunnybrook.data import GRAYSCALE, RGB, read_dicom_image

DEFAULT_VAL_PERCENT = 10
SERIES_PAIR = re.compile(r"^([^\s=,]+)=(\d{1,4})$")


class SunnybrookForm(forms.Form):
    """Where the images and contours are and how to encode them.

    Only the two folders are required; the other options take their defaults when left
    out (REST clients may send just the folders).
    """

    image_folder = ServerFolderField(
        label="Image folder",
        help_text="Holds one folder of DICOM images per case: <case>/IM-<series>-<NNNN>.dcm.",
    )
    contour_folder = ServerFolderField(
        label="Contour folder",
        help_text="Holds <case>/contours-manual/IRCCI-expert/IM-0001-<NNNN>-icontour-manual.txt.",
    )
    channel_conversion = forms.ChoiceField(
        label="Channels",
        choices=[(GRAYSCALE, "Grayscale (1 channel)"), (RGB, "RGB (3 channels)")],
        initial=GRAYSCALE,
        required=False,
    )
    val_percent = forms.IntegerField(
        label="Validation (%)",
        min_value=0,
        max_value=50,
        initial=DEFAULT_VAL_PERCENT,
        required=False,
        help_text="Share of the contoured slices set aside for validation.",
    )
    seed = forms.IntegerField(
        label="Shuffle seed",
        min_value=0,
        max_value=2**31 - 1,
        initial=0,
        required=False,
        help_text="The same seed gives the same train/validation split.",
    )
    series = forms.CharField(
        label="Series per case",
        required=False,
        help_text=(
            "Only where a case folder holds several series with the same slice numbers: "
            "case=series pairs, e.g. SC-HF-I-1=0004, SC-HF-I-2=0106."
        ),
    )

    def clean_channel_conversion(self):
        return self.cleaned_data["channel_conversion"] or GRAYSCALE

    def clean_val_percent(self):
        value = self.cleaned_data["val_percent"]
        return DEFAULT_VAL_PERCENT if value is None else value

    def clean_seed(self):
        return self.cleaned_data["seed"] or 0

    def clean_series(self) -> dict[str, int]:
        series = {}
        for pair in re.split(r"[\s,;]+", self.cleaned_data["series"].strip()):
            if not pair:
                continue
            match = SERIES_PAIR.match(pair)
            if match is None:
                raise ValidationError(
                    f"{pair!r} is not case=series (e.g. SC-HF-I-1=0004).", code="invalid"
                )
            series[match.group(1)] = int(match.group(2))
        return series


class SunnybrookInferenceForm(forms.Form):
    """One image to segment: an uploaded DICOM file or a record of the validation stage."""

    dicom_file = forms.FileField(
        label="DICOM image", required=False, help_text="A single-frame DICOM file with pixels."
    )
    validation_record = forms.IntegerField(
        label="…or validation record",
        min_value=0,
        required=False,
        help_text="Index of an entry of the dataset's validation stage (the first is 0).",
    )

    def clean_dicom_file(self):
        upload = self.cleaned_data.get("dicom_file")
        if upload:
            try:
                read_dicom_image(upload, upload.name)
            except EntryError as exc:
                raise ValidationError(str(exc), code="invalid_dicom") from None
            upload.seek(0)
        return upload

    def clean(self):
        cleaned = super().clean()
        has_file = bool(cleaned.get("dicom_file"))
        has_record = cleaned.get("validation_record") is not None
        if not self.errors and has_file == has_record:
            raise ValidationError(
                "Upload a DICOM file or give a validation record, not both.",
                code="one_input",
            )
        return cleaned
