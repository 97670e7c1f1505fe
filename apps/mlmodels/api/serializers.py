from collections.abc import Mapping

from rest_framework import serializers

from apps.accounts.models import Team
from apps.core import permissions
from apps.core.api import OwnedSerializerMixin
from apps.datasets.models import Dataset
from apps.mlmodels.models import TrainedModel
from apps.mlmodels.params import GpuParams, NetworkParams, SolverParams


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
            "network", "solver", "gpus", "best_epoch", "best", "sweep", "job", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "dataset", "status", "network", "solver", "gpus", "best_epoch", "sweep", "job",
            "created_at", "updated_at",
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


class SweepSolverParams(SolverParams):
    """Solver options; ``batch_size`` and ``base_lr`` may be lists (one model each)."""

    batch_size = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=65_536), min_length=1, required=False
    )
    base_lr = serializers.ListField(
        child=serializers.FloatField(min_value=1e-9, max_value=10), min_length=1, required=False
    )

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):  # DRF's own error: "Expected a dictionary"
            return super().to_internal_value(data)
        data = dict(data)
        for name in ("batch_size", "base_lr"):
            if name in data and not isinstance(data[name], list):
                value = data[name]
                data[name] = (
                    [v for v in str(value).split(",") if v.strip()]
                    if isinstance(value, str)
                    else [value]
                )
        return super().to_internal_value(data)


class TrainedModelCreateSerializer(OwnedSerializerMixin, serializers.Serializer):
    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.all())
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )
    visibility = serializers.ChoiceField(
        choices=TrainedModel._meta.get_field("visibility").choices, default="private"
    )
    network = NetworkParams()
    solver = SweepSolverParams()
    gpus = GpuParams(required=False)

    def validate_dataset(self, dataset):
        if not permissions.can(self.context["request"].user, permissions.VIEW, dataset):
            raise serializers.ValidationError("Unknown dataset.")
        return dataset

    def validate_network(self, network):
        from apps.mlmodels import services

        try:
            services.check_network(network, self.context["request"].user)
        except services.ModelError as exc:
            raise serializers.ValidationError(exc.detail[exc.field]) from None
        return network


class PredictionSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Class index.")
    label = serializers.CharField(help_text="Class name.")
    probability = serializers.FloatField()


class ClassificationSerializer(serializers.Serializer):
    """What ``classify`` answers once its job is done."""

    job = serializers.IntegerField(help_text="The classification job.")
    epoch = serializers.IntegerField(help_text="The snapshot that classified.")
    predictions = PredictionSerializer(many=True, help_text="The top 5, most probable first.")


class ClassifyPendingSerializer(serializers.Serializer):
    """``classify`` after a minute without an answer (202), or after its job failed (422,
    with ``detail``)."""

    job = serializers.IntegerField(help_text="The classification job; follow it at jobs/<id>/.")
    status = serializers.CharField()
    detail = serializers.CharField(required=False, help_text="Why the job failed (422).")
