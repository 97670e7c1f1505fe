"""The options of a Sunnybrook dataset, and the choice of an inference input."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

from apps.core.archives import Limits, is_archive
from apps.core.plugins import EntryError, ServerFolderField
from digits_sunnybrook.data import (
    ARCHIVE,
    FOLDER,
    GRAYSCALE,
    MAX_CONTOUR_BYTES,
    RGB,
    parse_contour,
    read_dicom_image,
)
from digits_sunnybrook.dicom import FIXED, MINMAX, PERCENTILE, RAW, WINDOW
from digits_sunnybrook.resize import CROP, PAD, SQUASH

DEFAULT_VAL_PERCENT = 10
SERIES_PAIR = re.compile(r"^([^\s=,]+)=(\d{1,4})$")
#: Options and the value they take when left out (REST clients may send just the folders).
DEFAULTS = {
    "source": FOLDER, "channel_conversion": GRAYSCALE, "val_percent": DEFAULT_VAL_PERCENT,
    "test_percent": 0, "seed": 0, "intensity": MINMAX, "bit_depth": 8,
    "percentile_low": 0.5, "percentile_high": 99.5, "resize_mode": SQUASH,
}  # fmt: skip
SOURCE_FIELDS = {FOLDER: ("image_folder", "contour_folder"), ARCHIVE: ("archive",)}


class SunnybrookForm(forms.Form):
    """Where the images and contours are, how to split them and how to encode them.

    Only the two folders (or the archive) are required; the other options take their
    defaults (``DEFAULTS``) when left out.
    """

    source = forms.ChoiceField(
        label="Source",
        choices=[(FOLDER, "Folders on the server"), (ARCHIVE, "Uploaded archive (zip or tar)")],
        required=False,
    )
    image_folder = ServerFolderField(
        label="Image folder",
        required=False,
        help_text="Holds one folder of DICOM images per case: <case>/IM-<series>-<NNNN>.dcm.",
    )
    contour_folder = ServerFolderField(
        label="Contour folder",
        required=False,
        help_text="Holds <case>/contours-manual/IRCCI-expert/IM-0001-<NNNN>-icontour-manual.txt.",
    )
    archive = forms.FileField(
        label="Archive",
        required=False,
        help_text=(
            "A zip or tar file holding an image folder and a contour folder of the layout above "
            "(e.g. SCD_DeidentifiedImages/ and SCD_ManualContours/)."
        ),
    )
    channel_conversion = forms.ChoiceField(
        label="Channels",
        choices=[(GRAYSCALE, "Grayscale (1 channel)"), (RGB, "RGB (3 channels)")],
        required=False,
    )
    val_percent = forms.IntegerField(
        label="Validation (% of cases)", min_value=0, max_value=50, required=False,
        help_text="Share of the cases (patients) whose slices all go to validation.",
    )  # fmt: skip
    test_percent = forms.IntegerField(
        label="Test (% of cases)", min_value=0, max_value=50, required=False,
        help_text="Share of the cases whose slices all go to the test stage.",
    )  # fmt: skip
    seed = forms.IntegerField(
        label="Split seed", min_value=0, max_value=2**31 - 1, required=False,
        help_text="The same seed gives the same cases in each stage.",
    )  # fmt: skip
    series = forms.CharField(
        label="Series per case",
        required=False,
        help_text=(
            "Only where a case folder holds several series with the same slice numbers: "
            "case=series pairs, e.g. SC-HF-I-1=0004, SC-HF-I-2=0106."
        ),
    )
    intensity = forms.ChoiceField(
        label="Intensities",
        choices=[
            (MINMAX, "Per image: lowest value to black, highest to white"),
            (WINDOW, "The file's window (VOI LUT or Window Center/Width)"),
            (FIXED, "A fixed window (center and width below)"),
            (PERCENTILE, "Per image, clipped to the percentiles below"),
            (RAW, "Stored values as they are (16-bit only)"),
        ],
        required=False,
        help_text="After the file's Rescale Slope/Intercept (modality LUT).",
    )
    bit_depth = forms.TypedChoiceField(
        label="Bit depth", coerce=int, required=False,
        choices=[(8, "8 bits (uint8)"), (16, "16 bits (uint16), keeps 12-bit detail")],
    )  # fmt: skip
    window_center = forms.FloatField(label="Window center", required=False)
    window_width = forms.FloatField(label="Window width", required=False, min_value=1)
    percentile_low = forms.FloatField(
        label="Low percentile", required=False, min_value=0, max_value=100
    )
    percentile_high = forms.FloatField(
        label="High percentile", required=False, min_value=0, max_value=100
    )
    resize_width = forms.IntegerField(
        label="Width", required=False, min_value=8, max_value=4096,
        help_text="With a height: every image (and mask) is brought to this size.",
    )  # fmt: skip
    resize_height = forms.IntegerField(label="Height", required=False, min_value=8, max_value=4096)
    resize_mode = forms.ChoiceField(
        label="Resize",
        choices=[
            (SQUASH, "Squash: scale to the size"),
            (CROP, "Crop: scale to cover the size, cut the centre"),
            (PAD, "Pad or cut: no scaling, keep the centre"),
        ],
        required=False,
        help_text="Masks are resized with the nearest neighbour.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, value in DEFAULTS.items():
            self.fields[name].initial = value

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

    def clean(self):
        cleaned = super().clean()
        for name, default in DEFAULTS.items():
            if cleaned.get(name) in (None, "") and name not in self._errors:
                cleaned[name] = default
        self._clean_source(cleaned)
        self._clean_intensity(cleaned)
        self._clean_resize(cleaned)
        if (cleaned.get("val_percent") or 0) + (cleaned.get("test_percent") or 0) >= 100:
            self.add_error("test_percent", "Validation and test must leave cases for training.")
        return cleaned

    def _require(self, cleaned, name: str, message: str) -> None:
        if cleaned.get(name) in (None, "") and name not in self._errors:
            self.add_error(name, ValidationError(message, code="required"))

    def _clean_source(self, cleaned) -> None:
        source = cleaned.get("source")
        # Only the chosen source's fields count: leftovers of the other are neither
        # checked nor stored.
        for other, names in SOURCE_FIELDS.items():
            if other != source:
                for name in names:
                    self._errors.pop(name, None)
                    cleaned[name] = None
        if source == FOLDER:
            self._require(cleaned, "image_folder", "Give the folder of the DICOM images.")
            self._require(cleaned, "contour_folder", "Give the folder of the contours.")
        elif source == ARCHIVE:
            self._require(cleaned, "archive", "Upload a zip or tar archive of the two folders.")
            upload = cleaned.get("archive")
            if upload and not is_archive(upload):
                self.add_error("archive", f"{upload.name} is neither a zip nor a tar archive.")
            limits = Limits.from_settings()  # the job enforces the limits of submission time
            cleaned["archive_limits"] = {
                "max_bytes": limits.max_bytes, "max_members": limits.max_members
            }  # fmt: skip

    def _clean_intensity(self, cleaned) -> None:
        mode = cleaned.get("intensity")
        if mode == FIXED:
            self._require(cleaned, "window_center", "Give the center of the fixed window.")
            self._require(cleaned, "window_width", "Give the width of the fixed window.")
        elif mode == PERCENTILE:
            low, high = cleaned.get("percentile_low"), cleaned.get("percentile_high")
            if low is not None and high is not None and low >= high:
                self.add_error("percentile_high", "The high percentile must be above the low one.")
        elif mode == RAW and cleaned.get("bit_depth") == 8:
            self.add_error(
                "intensity",
                "Stored values need 16-bit features: choose 16 bits or another mapping.",
            )

    def _clean_resize(self, cleaned) -> None:
        width, height = cleaned.get("resize_width"), cleaned.get("resize_height")
        if width and not height:
            self._require(cleaned, "resize_height", "Give the height too, or neither.")
        if height and not width:
            self._require(cleaned, "resize_width", "Give the width too, or neither.")


class SunnybrookInferenceForm(forms.Form):
    """One image to segment: an uploaded DICOM file (with its contour file, optionally, as
    the ground truth) or a record of the validation stage."""

    dicom_file = forms.FileField(
        label="DICOM image", required=False, help_text="A single-frame DICOM file with pixels."
    )
    contour_file = forms.FileField(
        label="Its contour file (optional)",
        required=False,
        help_text="The expert's icontour text file of this slice: Dice and IoU against it.",
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

    def clean_contour_file(self):
        upload = self.cleaned_data.get("contour_file")
        if upload:
            if upload.size > MAX_CONTOUR_BYTES:
                raise ValidationError(
                    f"{upload.name} is larger than {MAX_CONTOUR_BYTES} bytes; not a contour file.",
                    code="too_large",
                )
            try:
                parse_contour(upload.read(), upload.name)
            except EntryError as exc:
                raise ValidationError(str(exc), code="invalid_contour") from None
            upload.seek(0)
        return upload

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("contour_file") and not cleaned.get("dicom_file"):
            self.add_error("contour_file", "A contour file goes with an uploaded DICOM image.")
        has_file = bool(cleaned.get("dicom_file"))
        has_record = cleaned.get("validation_record") is not None
        if not self.errors and has_file == has_record:
            raise ValidationError(
                "Upload a DICOM file or give a validation record, not both.",
                code="one_input",
            )
        return cleaned
