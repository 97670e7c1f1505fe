"""What a request to train models says, checked once for every caller.

The new-model page (``apps.mlmodels.forms.ModelForm``) and the REST API
(``POST /api/v1/models/``) both validate their input with ``TrainRequest`` and hand
the result to ``apps.mlmodels.services.train``.
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers

from apps.core import permissions
from apps.core.api import NewOwnedRequest
from apps.datasets.models import Dataset
from apps.jobs.models import JobPriority
from apps.jobs.services import priority_refused
from apps.mlmodels import services, tasks
from apps.mlmodels.params import (
    DEFAULT_BASE_LR,
    DEFAULT_BATCH_SIZE,
    GpuParams,
    NetworkParams,
    SolverParams,
    split_list,
)


class SweepSolverParams(SolverParams):
    """Solver options; ``batch_size`` and ``base_lr`` may be lists (one model each)."""

    batch_size = serializers.ListField(
        child=serializers.IntegerField(
            min_value=1, max_value=65_536,
            error_messages={"invalid": "Enter numbers separated by commas for batch size.",
                            "min_value": "Batch sizes must be at least 1."},
        ),
        min_length=1, default=lambda: [DEFAULT_BATCH_SIZE],
        error_messages={"min_length": "Enter at least one value."},
    )  # fmt: skip
    base_lr = serializers.ListField(
        child=serializers.FloatField(
            min_value=1e-9, max_value=10,
            error_messages={"invalid": "Enter numbers separated by commas for learning rate.",
                            "min_value": "Learning rates must be positive."},
        ),
        min_length=1, default=lambda: [DEFAULT_BASE_LR],
        error_messages={"min_length": "Enter at least one value."},
    )  # fmt: skip

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):  # DRF's own error: "Expected a dictionary"
            return super().to_internal_value(data)
        data = dict(data)
        for name in ("batch_size", "base_lr", "class_weights"):
            if name in data:
                data[name] = split_list(data[name])
        return super().to_internal_value(data)


class TrainRequest(NewOwnedRequest):
    """Train one model, or one per batch size × learning rate (a sweep)."""

    # Context: ``user`` (or ``request``); ``model_file`` when the request carries the
    # ``.keras`` file to train from (network source ``upload`` without an ``upload_key``).

    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.all())
    network = NetworkParams()
    solver = SweepSolverParams()
    gpus = GpuParams(required=False)
    priority = serializers.ChoiceField(
        choices=JobPriority.choices, default=JobPriority.NORMAL,
        help_text="The training job's priority: 0 low, 1 normal, 2 high (needs the "
        "permission to submit high-priority jobs, or staff).",
    )  # fmt: skip

    class Meta:
        ref_name = "TrainedModelCreate"  # the schema's name for it, from before it was shared

    def validate_dataset(self, dataset):
        if not permissions.can(self.user, permissions.VIEW, dataset):
            raise serializers.ValidationError("Unknown dataset.")
        return dataset

    def validate(self, attrs):
        """The network and solver options suit the dataset's task (``services.check_task``)."""
        attrs = super().validate(attrs)  # the team and visibility
        solver = {**attrs["solver"], "batch_size": None, "base_lr": None}
        task = tasks.task_of(attrs["dataset"].manifest)
        if attrs["network"]["source"] == "standard" and not attrs["network"].get("name"):
            attrs["network"] = {**attrs["network"], "name": task.default_network}
        try:
            services.check_task(attrs["dataset"], attrs["network"], solver)
        except services.ModelError as exc:
            raise serializers.ValidationError(exc.detail) from None
        return attrs

    def validate_priority(self, priority):
        refused = priority_refused(self.user, priority)
        if refused:
            raise serializers.ValidationError(refused)
        return priority

    def validate_network(self, network):
        try:
            if network["source"] == "upload" and not network["upload_key"]:
                services.check_custom_code(self.user)  # the file comes with the request
            else:
                services.check_network(network, self.user)
        except services.ModelError as exc:
            raise serializers.ValidationError(exc.detail[exc.field]) from None
        return network
