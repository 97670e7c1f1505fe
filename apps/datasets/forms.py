from django import forms

from apps.core.forms import SharingForm
from apps.datasets.params import DEFAULT_MAX_ERROR_PERCENT, DEFAULT_PROCESSES, MAX_PROCESSES


class DatasetForm(SharingForm):
    """What every dataset has, whatever its type; the type's own form comes from its plugin."""

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
