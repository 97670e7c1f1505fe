from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action, api_view
from rest_framework.response import Response

from apps.core import permissions
from apps.core.api import Conflict, OwnedModelViewSet, answers, owned_viewset_answers
from apps.core.downloads import artifact_response
from apps.core.pagination import CreatedCursorPagination
from apps.jobs import events, series, services
from apps.jobs.api.serializers import (
    JobDetailSerializer,
    JobEventPageSerializer,
    JobEventSerializer,
    JobKindSerializer,
    JobSerializer,
)
from apps.jobs.filters import JobFilterSet
from apps.jobs.kinds import all_kinds
from apps.jobs.models import Job, JobPriority
from apps.usage.quotas import ParameterLimitExceeded

MAX_EVENTS_PAGE = 1000


@owned_viewset_answers(JobSerializer, JobDetailSerializer)
class JobViewSet(OwnedModelViewSet):
    """Jobs: list (newest first, cursor-paged), submit, inspect, abort, clone, delete."""

    queryset = Job.objects.select_related("owner", "team")
    pagination_class = CreatedCursorPagination
    filterset_class = JobFilterSet

    def get_serializer_class(self):
        return JobDetailSerializer if self.action == "retrieve" else JobSerializer

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action == "retrieve":
            qs = qs.prefetch_related("artifacts")
        return qs

    @extend_schema(responses=answers({201: JobSerializer}, 400, 413, 429))
    def create(self, request, *args, **kwargs):
        """Submit a job; 429 over a quota (``quota``, ``limit``, ``used``, ``frees_at``)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            job = services.submit(
                owner=request.user, kind=data["kind"], params=data["params"],
                name=data.get("name", ""), team=data.get("team"),
                visibility=data.get("visibility", "private"),
                priority=data.get("priority", JobPriority.NORMAL),
            )  # fmt: skip
        except ParameterLimitExceeded as exc:  # the parameter is a field of ``params``
            raise serializers.ValidationError({"params": exc.detail}) from None
        return Response(JobSerializer(job, context={"request": request}).data, status=201)

    def perform_destroy(self, instance):
        try:
            services.delete(instance)
        except services.JobStateError as exc:
            raise Conflict(str(exc)) from None

    @extend_schema(request=None, responses=answers({200: JobSerializer}, 403, 404, 409))
    @action(detail=True, methods=["post"])
    def abort(self, request, pk=None):
        """Stop the job: a queued job at once, a running one within seconds."""
        job = permissions.get_object_for(
            request.user, self.get_queryset(), permissions.CHANGE, pk=pk
        )
        try:
            job = services.request_abort(job, by=request.user)
        except services.JobStateError as exc:
            raise Conflict(str(exc)) from None
        job.refresh_from_db()
        return Response(JobSerializer(job, context={"request": request}).data)

    @extend_schema(request=None, responses=answers({201: JobSerializer}, 400, 404, 409))
    @action(detail=True, methods=["post"])
    def clone(self, request, pk=None):
        """Submit a new job like this one, owned by the caller.

        A training, classification or dataset build job is cloned through its model or
        dataset: a new one of the caller's (a new model id), with the rights creating it
        needs; 400 with ``detail`` saying why not.
        """
        try:
            new = services.clone(self.get_object(), request.user)
        except services.CloneRefused as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from None
        except services.JobStateError as exc:
            raise Conflict(str(exc)) from None
        return Response(JobSerializer(new, context={"request": request}).data, status=201)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after", OpenApiTypes.INT, description="Only events with a larger seq."
            ),
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description=f"At most this many (≤ {MAX_EVENTS_PAGE})."
            ),
            OpenApiParameter(
                "type",
                OpenApiTypes.STR,
                description="Only these types, comma-separated: status, progress, log, metric, epoch.",
            ),
        ],
        responses=answers({200: JobEventPageSerializer}, 400, 404),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def events(self, request, pk=None):
        """Events after a sequence number, oldest first: how a reconnecting client catches up."""
        job = self.get_object()
        params = EventQuery(data=request.query_params)
        params.is_valid(raise_exception=True)
        q = params.validated_data
        rows = job.events.filter(seq__gt=q["after"])
        if q.get("type"):
            rows = rows.filter(type__in=q["type"])
        rows = list(rows.order_by("seq")[: q["limit"]])
        return Response(
            {
                "job": job.pk,
                "last_seq": job.last_seq,
                "events": JobEventSerializer(rows, many=True).data,
            }
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "points", OpenApiTypes.INT,
                description=f"At most this many points per series (LTTB; ≤ {series.MAX_POINTS}).",
            ),
        ],
        responses=answers({200: OpenApiTypes.OBJECT}, 400, 404),
    )  # fmt: skip
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def metrics(self, request, pk=None):
        """Every metric series as ``[[step, value, unix time], ...]``, downsampled for charts;
        ``last_seq``: the events covered (a chart follows the event stream from there)."""
        job = self.get_object()
        params = SeriesQuery(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(series.metric_series(job, params.validated_data["points"]))

    @extend_schema(responses=answers({(200, "application/octet-stream"): OpenApiTypes.BINARY}, 404))
    @action(
        detail=True, methods=["get"], url_path=r"artifacts/(?P<name>.+)", pagination_class=None,
        filterset_class=None,
    )  # fmt: skip
    def artifact(self, request, pk=None, name=None):
        """Download one of the job's published artifacts."""
        job = self.get_object()
        artifact = get_object_or_404(job.artifacts, name=name)
        return artifact_response(artifact.key, artifact.name.rsplit("/", 1)[-1])


class SeriesQuery(serializers.Serializer):
    points = serializers.IntegerField(
        min_value=3, max_value=series.MAX_POINTS, default=series.DEFAULT_POINTS
    )


class EventQuery(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_EVENTS_PAGE, default=MAX_EVENTS_PAGE
    )
    type = serializers.MultipleChoiceField(choices=sorted(events.EVENT_TYPES), required=False)

    def to_internal_value(self, data):
        data = {k: data.get(k) for k in ("after", "limit") if data.get(k) is not None} | (
            {"type": data.get("type", "").split(",")} if data.get("type") else {}
        )
        return super().to_internal_value(data)


@extend_schema(responses=answers({200: JobKindSerializer(many=True)}))
@api_view(["GET"])
def job_kinds(request):
    """The registered job kinds; those with ``user_creatable`` can be posted to /jobs/."""
    return Response(JobKindSerializer(all_kinds(), many=True).data)
