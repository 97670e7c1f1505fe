from django import forms
from rest_framework import serializers

from apps.accounts.models import Team
from apps.core.api import OwnedSerializerMixin
from apps.core.plugins.catalog import data_ingestion_types
from apps.core.schema import FormOptionsField, RegistryField
from apps.datasets.models import Dataset
from apps.datasets.params import max_error_percent_field, processes_field


class DatasetSerializer(OwnedSerializerMixin, serializers.ModelSerializer):
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id", "name", "description", "type", "owner", "team", "visibility", "status",
            "options", "counts", "job", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["type", "status", "options", "job", "created_at", "updated_at"]

    def get_counts(self, dataset) -> dict[str, int]:
        return {stage: info["count"] for stage, info in dataset.manifest.get("stages", {}).items()}


class DatasetDetailSerializer(DatasetSerializer):
    class Meta(DatasetSerializer.Meta):
        fields = [*DatasetSerializer.Meta.fields, "manifest"]


class DatasetEntrySerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in its stage, from 0.")
    label = serializers.IntegerField(allow_null=True, help_text="Class index (null for masks).")
    label_name = serializers.CharField(allow_null=True)
    image = serializers.URLField(help_text="The entry as a PNG.")


class DatasetCreateSerializer(OwnedSerializerMixin, serializers.Serializer):
    """Create a dataset of ``type``; ``options`` are validated by the type's own form."""

    type = RegistryField(
        lambda: data_ingestion_types(), help_text="A dataset type from /api/v1/dataset-types/."
    )
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )
    visibility = serializers.ChoiceField(
        choices=Dataset._meta.get_field("visibility").choices, default="private"
    )
    options = FormOptionsField(
        lambda: {t: cls.get_dataset_form() for t, cls in data_ingestion_types().items()},
        default=dict,
        help_text="Values of the type's form. With multipart/form-data send it as a JSON "
        "string and each file field as a part named after the field.",
    )
    processes = processes_field()
    max_error_percent = max_error_percent_field()

    def validate_options(self, value):
        if isinstance(value, str):  # multipart: a JSON string
            import json

            try:
                value = json.loads(value)
            except ValueError:
                raise serializers.ValidationError("Must be a JSON object.") from None
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    def validate_type(self, value):
        if value not in data_ingestion_types():
            choices = ", ".join(sorted(data_ingestion_types())) or "none installed"
            raise serializers.ValidationError(
                f"Unknown dataset type {value!r}. Choose one of: {choices}."
            )
        return value

    def validate(self, attrs):
        attrs = super().validate(attrs)
        files = self.context.get("files")
        form_class = data_ingestion_types()[attrs["type"]].get_dataset_form()
        form = form_class(data=attrs["options"], files=files)
        if not form.is_valid():
            raise serializers.ValidationError({"options": form.errors.get_json_data()})
        attrs["options"] = form.cleaned_data
        return attrs


class DatasetUploadSerializer(DatasetCreateSerializer):
    """``DatasetCreateSerializer`` as multipart/form-data, for the schema: ``options`` is a
    JSON string, and each file field of an installed type's form is a part of its own."""

    options = serializers.CharField(
        default="{}", help_text="The values of the type's form, as a JSON object."
    )

    def get_fields(self):
        fields = super().get_fields()
        for type_id, cls in sorted(data_ingestion_types().items()):
            for name, field in cls.get_dataset_form()().fields.items():
                if isinstance(field, forms.FileField) and name not in fields:
                    fields[name] = serializers.FileField(
                        required=False, help_text=f"{type_id}: {field.label or name}"
                    )
        return fields


class DatasetTypeSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    category = serializers.CharField()
    plugin = serializers.CharField()
    options = serializers.DictField(help_text="Form fields: type, required, help text, choices.")
    options_schema = serializers.DictField(
        help_text="The JSON Schema of `options` (file fields are multipart parts instead)."
    )
