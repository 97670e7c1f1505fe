"""The new-dataset form: the fields every dataset has, checked as a ``BuildRequest`` with the
type's own form, like the API's."""

from django import forms

from apps.core.forms import SharingForm
from apps.core.plugins.catalog import get_data_ingestion
from apps.datasets.params import DEFAULT_MAX_ERROR_PERCENT, DEFAULT_PROCESSES, MAX_PROCESSES
from apps.datasets.requests import BuildRequest

#: The prefix of the type form's fields on the page.
OPTIONS_PREFIX = "data"


class DatasetForm(SharingForm):
    """What every dataset has, whatever its type; the type's own form comes from its plugin
    (``type_form``: bound to the request once it is checked, with its errors)."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    max_error_percent = forms.FloatField(
        min_value=0, max_value=100, initial=DEFAULT_MAX_ERROR_PERCENT, label="Maximum bad entries (%)",
        help_text="Bad entries are skipped and listed; above this share the build fails.",
    )  # fmt: skip
    processes = forms.IntegerField(
        min_value=1, max_value=MAX_PROCESSES, initial=DEFAULT_PROCESSES, label="Encoding processes"
    )

    field_order = ["name", "description", "max_error_percent", "processes", "visibility", "team"]

    def __init__(self, *args, user, type_id, **kwargs):
        super().__init__(*args, user=user, prefix="dataset", **kwargs)
        self.type_id = type_id
        self.type_form = get_data_ingestion(type_id).get_dataset_form()(prefix=OPTIONS_PREFIX)

    def is_valid(self) -> bool:
        """Valid when the whole request is, options included (whose errors ``type_form``
        shows)."""
        return super().is_valid() and "build_request" in self.cleaned_data

    def clean(self):
        """The page's fields as a ``BuildRequest`` (checked even when some of them are not,
        so that the type form shows its errors too); its errors next to their fields."""
        cleaned = super().clean()
        request = BuildRequest(
            data=self._request_data(cleaned),
            context={"user": self.user, "files": self.files, "options_prefix": OPTIONS_PREFIX},
        )
        valid = request.is_valid()
        self.type_form = request.options_form or self.type_form
        if valid:
            cleaned["build_request"] = request.validated_data
            return cleaned
        self._reask_files()
        for name, messages in request.errors.items():
            if name == "options":
                continue  # shown by the type form
            field = name if name in self.fields else None
            if field is None or field not in self.errors:
                self.add_error(field, [str(message) for message in messages])
        return cleaned

    def _reask_files(self) -> None:
        """A refused form keeps no archive: each file field of the type form that was sent
        says so, so that the file is chosen again (rather than silently dropped)."""
        form = self.type_form
        for name, field in form.fields.items():
            if isinstance(field, forms.FileField) and self.files.get(form.add_prefix(name)):
                text = "Choose this file again: files are not kept when the form is refused."
                field.help_text = text
                form[name].help_text = text

    def _request_data(self, cleaned) -> dict:
        data = {
            name: cleaned[name]
            for name in ("name", "description", "visibility", "processes", "max_error_percent")
            if name in cleaned
        }
        if cleaned.get("team"):
            data["team"] = cleaned["team"].slug
        return {**data, "type": self.type_id, "options": self.data}
