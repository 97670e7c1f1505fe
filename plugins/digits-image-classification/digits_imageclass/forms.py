"""The options of an image classification dataset, and of the resize preview.

Only the source fields are required; every other option takes its default when left
out, so REST clients may send just ``source`` and its folder, archive or prefix.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.urls import NoReverseMatch, reverse

from apps.core.plugins import ServerFileField, ServerFolderField
from apps.core.storage import get_store
from digits_imageclass import sources
from digits_imageclass.archives import Limits, is_archive
from digits_imageclass.images import COLOR, GRAYSCALE
from digits_imageclass.plan import ARCHIVE, FOLDER, LIST_OPTIONS, STORE_PREFIX, TEXT_LIST
from digits_imageclass.resize import CROP, FILL, HALF_CROP, SQUASH

MAX_SIDE = 4096
#: A labels file is read in the web process while the form is checked.
MAX_LABELS_BYTES = 4 * 2**20

SOURCE_CHOICES = [
    (FOLDER, "Folder on the server"),
    (ARCHIVE, "Uploaded archive (zip or tar)"),
    (STORE_PREFIX, "Object-store prefix"),
    (TEXT_LIST, "Text lists (path label) and a labels file"),
]
SOURCE_FIELDS = {
    FOLDER: ("folder", "val_folder", "test_folder"),
    ARCHIVE: ("archive", "val_archive", "test_archive"),
    STORE_PREFIX: ("prefix", "val_prefix", "test_prefix"),
    TEXT_LIST: (
        *(name for pair in LIST_OPTIONS.values() for name in pair),
        "labels_file", "labels_file_path", "path_prefix",
    ),
}  # fmt: skip
IMAGE_TYPE_CHOICES = [(COLOR, "Color (3 channels)"), (GRAYSCALE, "Grayscale (1 channel)")]
RESIZE_CHOICES = [
    (SQUASH, "Squash"),
    (CROP, "Crop"),
    (FILL, "Fill"),
    (HALF_CROP, "Half crop, half fill"),
]
ENCODING_CHOICES = [("png", "PNG (lossless)"), ("jpg", "JPEG (lossy)"), ("none", "None (raw)")]
DEFAULTS = {
    "image_type": COLOR, "width": 256, "height": 256, "resize_mode": SQUASH,
    "encoding": "png", "val_percent": 25, "test_percent": 0, "seed": 0, "min_per_class": 2,
}  # fmt: skip


class CheckboxDefaultOn(forms.CheckboxInput):
    """A checkbox that is on when a REST client leaves the option out.

    A browser omits unchecked boxes from its form data (a QueryDict), so there a
    missing value still means off; JSON options (a dict) without it mean on.
    """

    def value_from_datadict(self, data, files, name):
        if name not in data and not isinstance(data, QueryDict):
            return True
        return super().value_from_datadict(data, files, name)


class StorePrefixField(forms.CharField):
    """A folder of the artifact store below an allowed import prefix, holding something."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        try:
            prefix = sources.check_import_prefix(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="outside_prefixes") from None
        if next(iter(get_store().list(prefix)), None) is None:
            raise ValidationError(f"Nothing is stored below {prefix}.", code="empty")
        return prefix


def _folder(label, help_text=""):
    return ServerFolderField(label=label, required=False, help_text=help_text)


class ImageClassificationForm(forms.Form):
    source = forms.ChoiceField(label="Images from", choices=SOURCE_CHOICES, initial=FOLDER)

    folder = _folder("Training images", "A server folder with one sub-folder of images per class.")
    val_folder = _folder("Separate validation images (optional)")
    test_folder = _folder("Separate test images (optional)")

    archive = forms.FileField(
        label="Training images archive", required=False,
        help_text="A zip or tar file (gzip, bzip2 or xz compressed) with one folder per class.",
    )  # fmt: skip
    val_archive = forms.FileField(label="Separate validation archive (optional)", required=False)
    test_archive = forms.FileField(label="Separate test archive (optional)", required=False)

    prefix = StorePrefixField(
        label="Training images store prefix", required=False,
        help_text="A folder of the object store, e.g. imports/flowers/, with one folder per class.",
    )  # fmt: skip
    val_prefix = StorePrefixField(label="Separate validation prefix (optional)", required=False)
    test_prefix = StorePrefixField(label="Separate test prefix (optional)", required=False)

    train_list = forms.FileField(
        label="Training list", required=False,
        help_text="One 'path label' line per image; label is a line index of the labels file.",
    )  # fmt: skip
    train_list_path = ServerFileField(label="…or training list on the server", required=False)
    val_list = forms.FileField(label="Validation list (optional)", required=False)
    val_list_path = ServerFileField(label="…or validation list on the server", required=False)
    test_list = forms.FileField(label="Test list (optional)", required=False)
    test_list_path = ServerFileField(label="…or test list on the server", required=False)
    labels_file = forms.FileField(
        label="Labels file", required=False, help_text="One class name per line."
    )
    labels_file_path = ServerFileField(label="…or labels file on the server", required=False)
    path_prefix = _folder(
        "Path prefix (optional)",
        "Server folder relative list paths start from; default: the list file's folder.",
    )

    image_type = forms.ChoiceField(label="Image type", choices=IMAGE_TYPE_CHOICES, required=False)
    width = forms.IntegerField(min_value=1, max_value=MAX_SIDE, required=False)
    height = forms.IntegerField(min_value=1, max_value=MAX_SIDE, required=False)
    resize_mode = forms.ChoiceField(label="Resize mode", choices=RESIZE_CHOICES, required=False)
    encoding = forms.ChoiceField(label="Image encoding", choices=ENCODING_CHOICES, required=False)
    val_percent = forms.IntegerField(
        label="Validation (%)", min_value=0, max_value=99, required=False,
        help_text="Per class; ignored with a separate validation source.",
    )  # fmt: skip
    test_percent = forms.IntegerField(
        label="Test (%)", min_value=0, max_value=99, required=False,
        help_text="Per class; ignored with a separate test source.",
    )  # fmt: skip
    min_per_class = forms.IntegerField(
        label="Minimum samples per class", min_value=1, required=False,
        help_text="Classes with fewer images are dropped.",
    )  # fmt: skip
    max_per_class = forms.IntegerField(
        label="Maximum samples per class", min_value=1, required=False,
        help_text="Classes with more images are truncated (after shuffling).",
    )  # fmt: skip
    shuffle = forms.BooleanField(
        required=False, initial=True, widget=CheckboxDefaultOn, label="Shuffle"
    )
    seed = forms.IntegerField(
        label="Shuffle seed", min_value=0, max_value=2**31 - 1, required=False,
        help_text="The same seed gives the same split and order.",
    )  # fmt: skip
    mean_image = forms.BooleanField(
        required=False, initial=True, widget=CheckboxDefaultOn, label="Compute the mean image"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, value in DEFAULTS.items():
            self.fields[name].initial = value

    def clean(self):
        cleaned = super().clean()
        source = cleaned.get("source")
        if source not in SOURCE_FIELDS:
            return cleaned
        # The page holds every source's fields; only the chosen source's count, so a
        # leftover value (or upload) of another source is neither checked nor stored.
        for other, names in SOURCE_FIELDS.items():
            if other != source:
                for name in names:
                    self._errors.pop(name, None)
                    cleaned[name] = None
        for name, default in DEFAULTS.items():
            if cleaned.get(name) in (None, ""):
                cleaned[name] = default
        {
            FOLDER: self._clean_folder, ARCHIVE: self._clean_archive,
            STORE_PREFIX: self._clean_prefix, TEXT_LIST: self._clean_list,
        }[source](cleaned)  # fmt: skip
        self._clean_numbers(cleaned)
        return cleaned

    def _require(self, cleaned, name: str, what: str) -> None:
        if not cleaned.get(name) and name not in self._errors:
            self.add_error(name, ValidationError(f"Give {what}.", code="required"))

    def _clean_folder(self, cleaned):
        self._require(cleaned, "folder", "the server folder of the training images")
        self._separate_stages(cleaned, "val_folder", "test_folder")

    def _clean_prefix(self, cleaned):
        self._require(cleaned, "prefix", "the store prefix of the training images")
        self._separate_stages(cleaned, "val_prefix", "test_prefix")

    def _clean_archive(self, cleaned):
        self._require(cleaned, "archive", "an archive of the training images")
        for name in SOURCE_FIELDS[ARCHIVE]:
            upload = cleaned.get(name)
            if upload and not is_archive(upload):
                self.add_error(name, f"{upload.name} is neither a zip nor a tar archive.")
        self._separate_stages(cleaned, "val_archive", "test_archive")
        # The job process enforces the limits in force when the dataset was submitted.
        limits = Limits.from_settings()
        cleaned["archive_limits"] = {
            "max_bytes": limits.max_bytes,
            "max_members": limits.max_members,
        }

    def _clean_list(self, cleaned):
        for stage, (upload, path) in LIST_OPTIONS.items():
            if cleaned.get(upload) and cleaned.get(path):
                self.add_error(path, "Upload the list or name a file on the server, not both.")
            elif stage == "train" and not (cleaned.get(upload) or cleaned.get(path)):
                self._require(cleaned, upload, "the training list (upload or server file)")
        self._separate_stages(cleaned, "val_list", "test_list", "val_list_path", "test_list_path")
        labels_upload, labels_path = cleaned.get("labels_file"), cleaned.get("labels_file_path")
        if labels_upload and labels_path:
            self.add_error("labels_file_path", "Upload a labels file or name one, not both.")
            return
        if not (labels_upload or labels_path):
            self._require(cleaned, "labels_file", "the labels file (upload or server file)")
            return
        field = "labels_file" if labels_upload else "labels_file_path"
        try:
            cleaned["labels"] = _read_labels(labels_upload, labels_path)
        except ValueError as exc:
            self.add_error(field, ValidationError(str(exc), code="labels"))
        # The names travel in the options; the upload itself is not needed by the job.
        cleaned["labels_file"] = None

    def _separate_stages(self, cleaned, val: str, test: str, *more: str) -> None:
        """A separate validation / test source replaces that stage's percentage."""
        names = (val, test, *more)
        if any(cleaned.get(n) for n in names if n.startswith("val")):
            cleaned["val_percent"] = 0
        if any(cleaned.get(n) for n in names if n.startswith("test")):
            cleaned["test_percent"] = 0

    def _clean_numbers(self, cleaned):
        if (cleaned.get("val_percent") or 0) + (cleaned.get("test_percent") or 0) >= 100:
            self.add_error(
                "test_percent", "Validation and test together must leave images for training."
            )
        low, high = cleaned.get("min_per_class"), cleaned.get("max_per_class")
        if high is not None and low is not None and high < low:
            self.add_error("max_per_class", "The maximum must not be below the minimum per class.")


def _read_labels(upload, path: str | None) -> list[str]:
    """The class names of an uploaded or server-side labels file (ValueError saying why not)."""
    if upload is not None:
        name = upload.name
        upload.seek(0)
        data = upload.read(MAX_LABELS_BYTES + 1)
    else:
        name = path
        with open(path, "rb") as fh:
            data = fh.read(MAX_LABELS_BYTES + 1)
    if len(data) > MAX_LABELS_BYTES:
        raise ValueError(f"{name} is larger than a labels file may be ({MAX_LABELS_BYTES} bytes).")
    return sources.parse_labels(sources.decode_text(data, name), name)


GROUPS = [
    ("Images", ["image_type", "width", "height", "resize_mode", "encoding"]),
    ("Split", ["val_percent", "test_percent", "min_per_class", "max_per_class", "shuffle", "seed"]),
    ("Statistics", ["mean_image"]),
]


def template_context(form: ImageClassificationForm) -> dict[str, Any]:
    """What ``dataset_template.html`` shows: fields grouped by source and by topic."""
    try:
        preview_url = reverse("image-classification:preview")
    except NoReverseMatch:  # the plugin's pages are not mounted (loaded under another name)
        preview_url = None
    return {
        "form": form,
        # Not form.prefix in the template: the field named "prefix" shadows it there.
        "field_prefix": form.add_prefix(""),
        "source_field": form["source"],
        "sources": [
            (key, title, [form[name] for name in SOURCE_FIELDS[key]])
            for key, title in SOURCE_CHOICES
        ],
        "groups": [(title, [form[name] for name in names]) for title, names in GROUPS],
        "preview_url": preview_url,
    }


class PreviewForm(forms.Form):
    """One sample image and the resize options, for the live preview on the dataset page."""

    image = forms.FileField()
    width = forms.IntegerField(min_value=1, max_value=MAX_SIDE)
    height = forms.IntegerField(min_value=1, max_value=MAX_SIDE)
    resize_mode = forms.ChoiceField(choices=RESIZE_CHOICES)
    image_type = forms.ChoiceField(choices=IMAGE_TYPE_CHOICES, required=False)
