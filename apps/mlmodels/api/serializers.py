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
        "val_accuracy, val_loss, loss, accuracy (classification), val_dice, val_mean_iou "
        "(segmentation); null fields where there are none."
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
            **{
                key: row[key]
                for key in (
                    "val_accuracy",
                    "val_loss",
                    "loss",
                    "accuracy",
                    "val_dice",
                    "val_mean_iou",
                )
            },
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


class InferRequestSerializer(serializers.Serializer):
    """What every inference request may carry besides the inference form's own fields."""

    epoch = serializers.IntegerField(
        min_value=1, required=False, help_text="Default: the best epoch, else the latest."
    )


class ClassScoreSerializer(serializers.Serializer):
    """Agreement of the predicted mask with the ground truth, for one foreground class."""

    index = serializers.IntegerField()
    dice = serializers.FloatField(allow_null=True, help_text="Null: the class is in neither.")
    iou = serializers.FloatField(allow_null=True)
    predicted_pixels = serializers.IntegerField()
    true_pixels = serializers.IntegerField()
    # "class" is a keyword: declared below.


ClassScoreSerializer._declared_fields["class"] = serializers.CharField(help_text="Class name.")


class InferPredictionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    label = serializers.CharField()
    probability = serializers.FloatField()


class InferResultSerializer(serializers.Serializer):
    """One input's answer. Segmentation: ``mask`` and ``pixel_counts`` (plus ``scores``
    with a ground truth); classification: ``predictions``."""

    input = serializers.CharField(help_text="Which input (a file name, a dataset entry).")
    mask = serializers.CharField(
        required=False,
        help_text="The predicted mask: a data:image/png;base64 URL of an 8-bit grayscale "
        "PNG whose pixel values are class indices (0 background).",
    )
    mask_shape = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="[height, width]"
    )
    pixel_counts = serializers.DictField(
        child=serializers.IntegerField(), required=False, help_text="Pixels per class name."
    )
    predictions = InferPredictionSerializer(many=True, required=False, help_text="Best first.")
    scores = ClassScoreSerializer(
        many=True, required=False, help_text="With a ground-truth mask: Dice and IoU per class."
    )
    mean_dice = serializers.FloatField(required=False, allow_null=True)
    mean_iou = serializers.FloatField(required=False, allow_null=True)


class InferAnswerSerializer(serializers.Serializer):
    epoch = serializers.IntegerField(help_text="The snapshot that answered.")
    task = serializers.CharField(help_text="classification, segmentation, ...")
    results = InferResultSerializer(many=True)
