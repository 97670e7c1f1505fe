from django import forms
from rest_framework import serializers

from apps.accounts.models import Team
from apps.core.api import OwnedSerializerMixin
from apps.core.plugins.catalog import data_ingestion_types
from apps.datasets.models import Dataset
from apps.datasets.requests import BuildRequest


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


class DatasetUploadSerializer(BuildRequest):
    """``BuildRequest`` as multipart/form-data, for the schema: ``options`` is a
    JSON string, and each file field of an installed type's form is a part of its own."""

    options = serializers.CharField(
        default="{}", help_text="The values of the type's form, as a JSON object."
    )

    class Meta:
        ref_name = "DatasetUpload"

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
