"""What a request to build a dataset says, checked once for every caller.

The new-dataset page (``apps.datasets.forms.DatasetForm``) and the REST API
(``POST /api/v1/datasets/``) both validate their input with ``BuildRequest`` and hand
the result to ``apps.datasets.services.build``, which stores the uploaded files.
"""

from __future__ import annotations

import json

from rest_framework import serializers

from apps.core.api import NewOwnedRequest
from apps.core.plugins.catalog import data_ingestion_types
from apps.core.schema import FormOptionsField, RegistryField
from apps.datasets.params import DEFAULT_MAX_ERROR_PERCENT, DEFAULT_PROCESSES, MAX_PROCESSES


def processes_field() -> serializers.IntegerField:
    """Encoding processes of the build job."""
    return serializers.IntegerField(min_value=1, max_value=MAX_PROCESSES, default=DEFAULT_PROCESSES)


def max_error_percent_field() -> serializers.FloatField:
    """The share of bad entries above which the build fails (``apps.datasets.building``)."""
    return serializers.FloatField(min_value=0, max_value=100, default=DEFAULT_MAX_ERROR_PERCENT)


class BuildParams(serializers.Serializer):
    """The parameters of a build job (``apps.datasets.kinds``, which names this class by
    path: a worker process needs no serializers)."""

    dataset_id = serializers.IntegerField()
    type = serializers.CharField()
    options = serializers.DictField()
    processes = processes_field()
    max_error_percent = max_error_percent_field()


class BuildRequest(NewOwnedRequest):
    """Create a dataset of ``type``; ``options`` are validated by the type's own form."""

    # Context: ``user`` (or ``request``); ``files``, the files sent with the request (the
    # type form's file fields); ``options_prefix``, the prefix of the type form's fields in
    # ``options`` (the page's ``data-``; none in the API).

    type = RegistryField(
        lambda: data_ingestion_types(), help_text="A dataset type from /api/v1/dataset-types/."
    )
    options = FormOptionsField(
        lambda: {t: cls.get_dataset_form() for t, cls in data_ingestion_types().items()},
        default=dict,
        help_text="Values of the type's form. With multipart/form-data send it as a JSON "
        "string and each file field as a part named after the field.",
    )
    processes = processes_field()
    max_error_percent = max_error_percent_field()

    #: The type's form bound to the request's options once they are validated (the page
    #: renders it with its errors); ``None`` before, or for an unknown type.
    options_form = None

    class Meta:
        ref_name = "DatasetCreate"  # the schema's name for it, from before it was shared

    def validate_type(self, value):
        if value not in data_ingestion_types():
            choices = ", ".join(sorted(data_ingestion_types())) or "none installed"
            raise serializers.ValidationError(
                f"Unknown dataset type {value!r}. Choose one of: {choices}."
            )
        return value

    def validate_options(self, value):
        """The type's form checks the options, whatever else is wrong with the request (a
        page shows every error at once); an unknown type has its own error."""
        value = _json_object(value)
        type_id = self.initial_data.get("type")
        type_class = data_ingestion_types().get(type_id) if isinstance(type_id, str) else None
        if type_class is None:
            return value
        self.options_form = form = type_class.get_dataset_form()(
            data=value, files=self.context.get("files"), prefix=self.context.get("options_prefix")
        )
        if not form.is_valid():
            raise serializers.ValidationError(form.errors.get_json_data())
        return form.cleaned_data


def _json_object(value):
    if isinstance(value, str):  # multipart: a JSON string
        try:
            value = json.loads(value)
        except ValueError:
            raise serializers.ValidationError("Must be a JSON object.") from None
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be a JSON object.")
    return value
