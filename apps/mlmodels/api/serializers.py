from rest_framework import serializers

from apps.accounts.models import Team
from apps.core.api import OwnedSerializerMixin
from apps.mlmodels.models import TrainedModel


class TrainedModelSerializer(OwnedSerializerMixin, serializers.ModelSerializer):
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )
    best = serializers.SerializerMethodField(
        help_text="The best epoch's figures (the last epoch's without validation): epoch, "
        "val_accuracy, val_loss, loss, accuracy; null fields where there are none."
    )

    class Meta:
        model = TrainedModel
        fields = [
            "id", "name", "description", "dataset", "owner", "team", "visibility", "status",
            "network", "solver", "gpus", "best_epoch", "best", "sweep", "job", "request_count",
            "last_used_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "dataset", "status", "network", "solver", "gpus", "best_epoch", "sweep", "job",
            "request_count", "last_used_at", "created_at", "updated_at",
        ]  # fmt: skip

    def get_best(self, model) -> dict[str, float | int | None]:
        from apps.mlmodels.compare import summary

        row = summary(model)
        return {
            "epoch": row["best_epoch"],
            **{key: row[key] for key in ("val_accuracy", "val_loss", "loss", "accuracy")},
        }


class TrainedModelDetailSerializer(TrainedModelSerializer):
    snapshots = serializers.SerializerMethodField()

    class Meta(TrainedModelSerializer.Meta):
        fields = [*TrainedModelSerializer.Meta.fields, "result", "snapshots"]

    def get_snapshots(self, model) -> list[int]:
        from apps.mlmodels import snapshots

        return snapshots.epochs(model.pk)


class CreatedModelsSerializer(serializers.Serializer):
    """What creating models answers: one model, or one per batch size × learning rate."""

    sweep = serializers.CharField(
        help_text="The sweep the models share (filter models by it); empty for one model."
    )
    models = TrainedModelSerializer(many=True)
