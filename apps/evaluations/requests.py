"""What a request to evaluate a model says, checked once for the page and the API.

The evaluate page (``apps.evaluations.views.evaluation_new``) and ``POST
/api/v1/evaluations/`` both validate their input with ``EvaluateRequest`` and hand the
result to ``apps.evaluations.services.evaluate``. Every identifier checked here is the
caller's to use: a model and a dataset they may see, uploads of their own ("not yours"
and "absent" answer alike).
"""

from __future__ import annotations

from rest_framework import serializers

from apps.accounts.models import Team
from apps.core import permissions, uploads
from apps.core.api import OwnedSerializerMixin
from apps.datasets.models import Dataset
from apps.evaluations.models import Evaluation
from apps.mlmodels.models import TrainedModel

STAGES = ("val", "test", "train")
MAX_TOP_N = 20
MAX_ID = 2**63 - 1  # the database's bigint: a larger id is invalid, not a server error


class EvaluateRequest(OwnedSerializerMixin, serializers.Serializer):
    """Classify many inputs with a model's snapshot; figures where they carry labels."""

    model = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="The model to evaluate (one you may see)."
    )
    source = serializers.ChoiceField(
        choices=Evaluation.Source.choices,
        help_text="stage: a dataset's stage; archive: a zip/tar of images (top folders named "
        "like classes give labels); list: lines 'path [label]' (paths inside the archive when "
        "one is given, else server paths under DIGITS_SERVER_DATA_ROOTS).",
    )
    dataset = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, allow_null=True,
        help_text="Source stage: default the model's dataset.",
    )  # fmt: skip
    stage = serializers.ChoiceField(choices=STAGES, default="val")
    archive = serializers.FileField(required=False, help_text="A zip or tar archive (multipart).")
    archive_key = serializers.CharField(
        required=False, help_text="An archive uploaded before (POST /api/v1/evaluations/uploads/)."
    )
    list = serializers.FileField(required=False, help_text="A text list (multipart).")
    list_key = serializers.CharField(required=False, help_text="A text list uploaded before.")
    epoch = serializers.IntegerField(
        min_value=1, max_value=1_000_000, required=False, allow_null=True,
        help_text="Default: the best epoch.",
    )  # fmt: skip
    top_n = serializers.IntegerField(min_value=1, max_value=MAX_TOP_N, default=5)
    batch_size = serializers.IntegerField(min_value=1, max_value=4096, default=256)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )
    visibility = serializers.ChoiceField(
        choices=Evaluation._meta.get_field("visibility").choices, default="private"
    )

    def validate_model(self, pk):
        model = TrainedModel.objects.filter(pk=pk).visible_to(self.user).first()
        if model is None:
            raise serializers.ValidationError("Unknown model.")
        return model

    def validate_dataset(self, pk):
        if pk is None:
            return None
        dataset = Dataset.objects.filter(pk=pk).visible_to(self.user).first()
        if dataset is None:
            raise serializers.ValidationError("Unknown dataset.")
        return dataset

    def _check_key(self, key: str) -> str:
        try:
            return uploads.check_owned(key, self.user)
        except uploads.UnknownUpload as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_archive_key(self, key):
        return self._check_key(key)

    def validate_list_key(self, key):
        return self._check_key(key)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        source = attrs["source"]
        if source == Evaluation.Source.STAGE:
            attrs["dataset"] = self._stage_dataset(attrs)
        has_archive = "archive" in attrs or "archive_key" in attrs
        has_list = "list" in attrs or "list_key" in attrs
        if source == Evaluation.Source.ARCHIVE and not has_archive:
            raise serializers.ValidationError({"archive": "Upload an archive of images."})
        if source == Evaluation.Source.LIST and not has_list:
            raise serializers.ValidationError({"list": "Upload a text list of images."})
        return attrs

    def _stage_dataset(self, attrs) -> Dataset:
        model, stage = attrs["model"], attrs["stage"]
        dataset = attrs.get("dataset") or model.dataset
        if not permissions.can(self.user, permissions.VIEW, dataset):
            raise serializers.ValidationError(
                {"dataset": "The model's dataset is not shared with you; upload images."}
            )
        if dataset.status != Dataset.Status.READY:
            raise serializers.ValidationError({"dataset": f"“{dataset.name}” is not built."})
        if not dataset.stage_count(stage):
            raise serializers.ValidationError(
                {"stage": f"“{dataset.name}” has no {stage} entries."}
            )
        shape = (dataset.manifest.get("feature") or {}).get("shape")
        if shape != (model.dataset.manifest.get("feature") or {}).get("shape"):
            raise serializers.ValidationError(
                {"dataset": f"“{dataset.name}” holds entries of shape {shape}, not the model's."}
            )
        return dataset


class EvaluateParams(serializers.Serializer):
    """The parameters of a ``model.evaluate`` job (``apps.evaluations.kinds``, which names
    this class by path: a worker process needs no serializers)."""

    evaluation_id = serializers.IntegerField()
    model_id = serializers.IntegerField()
    epoch = serializers.IntegerField(min_value=1)
    train_params = serializers.DictField()
    source = serializers.ChoiceField(choices=Evaluation.Source.choices)
    stage = serializers.CharField(allow_blank=True)
    dataset = serializers.DictField(allow_null=True)
    archive_key = serializers.CharField(allow_null=True)
    list_key = serializers.CharField(allow_null=True)
    top_n = serializers.IntegerField(min_value=1)
    batch_size = serializers.IntegerField(min_value=1)
