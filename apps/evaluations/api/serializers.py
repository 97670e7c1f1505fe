from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import Team
from apps.core.api import OwnedSerializerMixin
from apps.evaluations.models import Evaluation


class ClassFiguresSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    precision = serializers.FloatField()
    recall = serializers.FloatField()
    f1 = serializers.FloatField()
    support = serializers.IntegerField(help_text="Labelled entries of this class.")
    predicted = serializers.IntegerField(help_text="Entries predicted (top-1) as this class.")


class SummarySerializer(serializers.Serializer):
    """The figures of a finished evaluation (``apps.evaluations.metrics``)."""

    count = serializers.IntegerField(help_text="Entries classified.")
    labelled = serializers.IntegerField(help_text="Entries with a true class.")
    top_n = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True, help_text="Top-1, over labelled entries.")
    top_n_accuracy = serializers.FloatField(allow_null=True)
    confusion = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="Counts: row = true class, column = predicted class.",
    )
    classes = ClassFiguresSerializer(many=True)


class EvaluationSerializer(OwnedSerializerMixin, serializers.ModelSerializer):
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )
    accuracy = serializers.SerializerMethodField()

    class Meta:
        model = Evaluation
        fields = [
            "id", "name", "model", "epoch", "source", "dataset", "stage", "top_n", "owner",
            "team", "visibility", "status", "accuracy", "job", "created_at",
        ]  # fmt: skip
        read_only_fields = [
            "model", "epoch", "source", "dataset", "stage", "top_n", "status", "job",
            "created_at",
        ]  # fmt: skip

    def get_accuracy(self, evaluation) -> float | None:
        return evaluation.summary.get("accuracy")


class EvaluationDetailSerializer(EvaluationSerializer):
    summary = serializers.SerializerMethodField()
    inputs = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta(EvaluationSerializer.Meta):
        fields = [*EvaluationSerializer.Meta.fields, "inputs", "summary", "error"]

    @extend_schema_field(SummarySerializer(allow_null=True))
    def get_summary(self, evaluation):
        return evaluation.summary or None

    def get_inputs(self, evaluation) -> dict[str, str]:
        """The names of the uploaded files (their keys only to their owner)."""
        mine = evaluation.owner_id == self.user.pk
        return {k: v for k, v in evaluation.inputs.items() if mine or not k.endswith("_key")}

    def get_error(self, evaluation) -> str:
        job = evaluation.job
        return job.error if job is not None else ""


class TopClassSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    label = serializers.CharField()
    probability = serializers.FloatField()


class EvaluationEntrySerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="Row of the predictions file.")
    index = serializers.IntegerField(
        help_text="The dataset entry (source stage), else the file's position in the source."
    )
    name = serializers.CharField(help_text="The file's path (archive, list); empty for a stage.")
    label = serializers.IntegerField(allow_null=True, help_text="True class, if known.")
    label_name = serializers.CharField(allow_null=True)
    predicted = serializers.IntegerField()
    predicted_name = serializers.CharField()
    correct = serializers.BooleanField(allow_null=True)
    top = TopClassSerializer(many=True)
    image = serializers.URLField(
        allow_null=True, help_text="The dataset entry's image (source stage), else null."
    )


class TopPerClassSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    entries = EvaluationEntrySerializer(many=True)


class StoredEvaluationUploadSerializer(serializers.Serializer):
    upload_key = serializers.CharField(help_text="Name it as archive_key or list_key; yours only.")
    name = serializers.CharField()
    size = serializers.IntegerField()


class EvaluationUpload(serializers.Serializer):
    file = serializers.FileField(help_text="A zip/tar archive of images or a text list.")
