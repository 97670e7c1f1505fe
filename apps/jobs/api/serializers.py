from rest_framework import serializers
from rest_framework.reverse import reverse

from apps.accounts.models import Team
from apps.core.api import OwnedSerializerMixin
from apps.core.schema import RegistryField
from apps.jobs.display import queue_position
from apps.jobs.kinds import all_kinds, get_kind
from apps.jobs.models import Job, JobArtifact, JobEvent
from apps.jobs.services import priority_refused, shown_params


class JobArtifactSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = JobArtifact
        fields = ["name", "size", "created_at", "download_url"]

    def get_download_url(self, artifact) -> str:
        url = reverse("job-artifact", kwargs={"pk": artifact.job_id, "name": artifact.name})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class JobSerializer(OwnedSerializerMixin, serializers.ModelSerializer):
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )
    kind = RegistryField(
        lambda: [k.name for k in all_kinds() if k.user_creatable],
        help_text="A job kind from /api/v1/job-kinds/ (one a user may submit).",
    )
    params = serializers.JSONField(required=False, default=dict)

    class Meta:
        model = Job
        fields = [
            "id", "name", "kind", "queue", "params", "owner", "team", "visibility", "priority",
            "status", "progress", "eta_seconds", "status_text", "attempts", "max_attempts",
            "abort_requested", "worker", "heartbeat_at", "error", "result", "last_seq",
            "cloned_from", "created_at", "enqueued_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = [
            "queue", "status", "progress", "eta_seconds", "status_text", "attempts",
            "max_attempts", "abort_requested", "worker", "heartbeat_at", "error", "result",
            "last_seq", "cloned_from", "created_at", "enqueued_at", "started_at", "finished_at",
        ]  # fmt: skip
        extra_kwargs = {"name": {"required": False}}

    def validate_kind(self, value):
        if self.instance is not None and value != self.instance.kind:
            raise serializers.ValidationError("The kind of an existing job cannot change.")
        try:
            kind = get_kind(value)
        except LookupError:
            kind = None
        if kind is None or (self.instance is None and not kind.user_creatable):
            choices = ", ".join(k.name for k in all_kinds() if k.user_creatable)
            raise serializers.ValidationError(
                f"Unknown job kind {value!r}. Choose one of: {choices}."
            )
        return value

    def validate_priority(self, value):
        refused = priority_refused(self.context["request"].user, value)
        if refused:
            raise serializers.ValidationError(refused)
        return value

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if self.instance is None:
            try:
                attrs["params"] = get_kind(attrs["kind"]).validate_params(
                    attrs.get("params") or {}, self.context["request"].user
                )
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"params": exc.detail}) from None
        elif "params" in attrs and attrs["params"] != self.instance.params:
            raise serializers.ValidationError(
                {"params": "Parameters of a submitted job cannot change; clone it."}
            )
        return attrs

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None:
            data["params"] = shown_params(instance, request.user)
        return data


class JobDetailSerializer(JobSerializer):
    artifacts = JobArtifactSerializer(many=True, read_only=True)
    queue_position = serializers.SerializerMethodField(
        help_text="1 for the next job its queue runs; null unless queued."
    )

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "artifacts", "queue_position"]

    def get_queue_position(self, job) -> int | None:
        return queue_position(job)


class JobEventSerializer(serializers.ModelSerializer):
    time = serializers.DateTimeField(source="created_at")

    class Meta:
        model = JobEvent
        fields = ["seq", "type", "time", "data"]


class JobEventPageSerializer(serializers.Serializer):
    """Events of a job after a sequence number, with the job's latest sequence number."""

    job = serializers.IntegerField()
    last_seq = serializers.IntegerField(help_text="The job's latest event; ask again after it.")
    events = JobEventSerializer(many=True)


class JobKindSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    queue = serializers.CharField()
    user_creatable = serializers.BooleanField()
