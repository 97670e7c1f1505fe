"""The shape of ``GET /api/v1/cluster/`` (``apps.cluster.overview``), for the schema."""

from rest_framework import serializers


class JobRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null: a job you may not see.")
    name = serializers.CharField(allow_blank=True)
    owner = serializers.CharField(allow_blank=True)


class DeviceSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    ident = serializers.CharField(help_text="The id a job's CUDA_VISIBLE_DEVICES names.")
    name = serializers.CharField(allow_blank=True)
    utilization = serializers.IntegerField(allow_null=True, help_text="Percent (NVML).")
    memory_used_mb = serializers.IntegerField(allow_null=True)
    memory_total_mb = serializers.IntegerField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    held_by = JobRefSerializer(many=True, help_text="The jobs holding the device.")


class NodeSerializer(serializers.Serializer):
    name = serializers.CharField()
    online = serializers.BooleanField()
    last_seen = serializers.DateTimeField(allow_null=True)
    queues = serializers.ListField(child=serializers.CharField())
    slots = serializers.IntegerField()
    nvml = serializers.BooleanField(help_text="Whether the devices and figures come from NVML.")
    devices = DeviceSerializer(many=True)


class QueueEntrySerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="1: the next job to start.")
    job = JobRefSerializer()
    priority = serializers.CharField()
    gpus = serializers.CharField(help_text="What the job asks for.")
    waiting_for = serializers.CharField()
    estimated_start = serializers.DateTimeField(allow_null=True)


class QueueSerializer(serializers.Serializer):
    name = serializers.CharField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    jobs = QueueEntrySerializer(many=True, help_text="Staff: every job; others: their own.")


class ClusterSerializer(serializers.Serializer):
    nodes = NodeSerializer(many=True)
    queues = QueueSerializer(many=True)
