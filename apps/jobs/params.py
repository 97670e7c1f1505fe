"""The parameters of the engine's own job kind, ``worker.check`` (``apps.jobs.kinds``).

A module of its own so that Django REST framework's serializers are imported where jobs
are submitted, not by every worker process.
"""

from rest_framework import serializers

from apps.jobs.kinds import QUEUES


class GpuRequestParams(serializers.Serializer):
    """A job's GPU request, ``params["gpus"]`` (the scheduler reads it, whatever the kind)."""

    mode = serializers.ChoiceField(choices=("next", "specific", "count", "none"), default="next")
    ids = serializers.ListField(child=serializers.IntegerField(min_value=0), default=list)
    count = serializers.IntegerField(min_value=1, max_value=64, default=1)

    def validate(self, attrs):
        if attrs["mode"] == "specific" and not attrs["ids"]:
            raise serializers.ValidationError({"ids": "List the GPU numbers to use."})
        return attrs


class WorkerCheckParams(serializers.Serializer):
    queue = serializers.ChoiceField(choices=QUEUES, default="default")
    steps = serializers.IntegerField(min_value=1, max_value=100_000, default=20)
    step_seconds = serializers.FloatField(min_value=0.0, max_value=60.0, default=0.5)
    matrix_size = serializers.IntegerField(min_value=8, max_value=8192, default=256)
    use_tensorflow = serializers.BooleanField(default=False)
    fail_at_step = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None,
        help_text="Raise an error at this step (to see how failures are reported).",
    )  # fmt: skip
    gpus = GpuRequestParams(
        required=False,
        help_text="GPUs to reserve (default: any one on the gpu queue, none on default).",
    )
