from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.reverse import reverse

from apps.core import permissions, uploads
from apps.core.api import (
    Conflict,
    ErrorSerializer,
    OwnedModelViewSet,
    answers,
    owned_viewset_answers,
)
from apps.evaluations import files, services
from apps.evaluations.api.serializers import (
    EvaluationDetailSerializer,
    EvaluationEntrySerializer,
    EvaluationSerializer,
    EvaluationUpload,
    StoredEvaluationUploadSerializer,
    TopPerClassSerializer,
)
from apps.evaluations.filters import EntryFilterSet, EntryRows, EvaluationFilterSet
from apps.evaluations.models import Evaluation
from apps.evaluations.requests import EvaluateRequest
from apps.jobs.services import JobStateError

ENDED_BADLY = OpenApiResponse(
    ErrorSerializer,
    description="The evaluation ended without predictions (its job failed or was aborted); "
    "`detail` says why.",
)
ENTRY_FILTERS = [
    OpenApiParameter("true", int, description="Only entries of this true class."),
    OpenApiParameter("predicted", int, description="Only entries predicted (top-1) as this."),
    OpenApiParameter("correct", bool, description="Only entries classified right (or wrong)."),
]
PAGES = [
    OpenApiParameter("page", int),
    OpenApiParameter("page_size", int, description="At most 500; default 100."),
]


class EntryPages(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "unprocessable"


@owned_viewset_answers(EvaluationSerializer, EvaluationDetailSerializer)
class EvaluationViewSet(OwnedModelViewSet):
    """Evaluations: classify a dataset stage, an archive or a list with a model; figures,
    per-entry predictions (paged, filtered, as CSV), top entries per class."""

    queryset = Evaluation.objects.select_related("owner", "team", "model", "dataset", "job")
    filterset_class = EvaluationFilterSet

    def get_queryset(self):
        return self.queryset.visible_to(self.request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return EvaluateRequest
        return EvaluationDetailSerializer if self.action == "retrieve" else EvaluationSerializer

    @extend_schema(
        request={"multipart/form-data": EvaluateRequest, "application/json": EvaluateRequest},
        responses=answers({202: EvaluationSerializer}, 400, 413),
    )
    def create(self, request, *args, **kwargs):
        """Start an evaluation job; answers 202 with the evaluation (status running)."""
        params = EvaluateRequest(data=request.data, context={"request": request})
        params.is_valid(raise_exception=True)
        try:
            evaluation = services.evaluate(request.user, params.validated_data)
        except services.EvaluationError as exc:
            raise serializers.ValidationError(exc.detail) from None
        data = EvaluationSerializer(evaluation, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED)

    def perform_update(self, serializer):
        services.update_sharing(serializer.save())

    def perform_destroy(self, instance):
        try:
            services.delete(instance)
        except JobStateError as exc:
            raise Conflict(str(exc)) from None

    def _rows(self, evaluation):
        try:
            return services.rows(evaluation)
        except services.NotReady as exc:
            if evaluation.status == Evaluation.Status.RUNNING:
                raise Conflict(str(exc)) from None
            error = evaluation.job.error if evaluation.job else ""
            raise Unprocessable(error or str(exc)) from None

    def _entries(self, evaluation, positions):
        rows = services.entry_rows(evaluation, positions)
        for row in rows:
            row["image"] = None
            if evaluation.dataset_id is not None:
                row["image"] = reverse(
                    "dataset-entry-image",
                    kwargs={"pk": evaluation.dataset_id, "stage": evaluation.stage,
                            "index": row["index"]},
                    request=self.request,
                )  # fmt: skip
        return EvaluationEntrySerializer(rows, many=True).data

    @extend_schema(
        parameters=[*ENTRY_FILTERS, *PAGES],
        responses=answers({200: EvaluationEntrySerializer(many=True), 422: ENDED_BADLY},
                          400, 404, 409),
    )  # fmt: skip
    @action(detail=True, methods=["get"], pagination_class=EntryPages)
    def entries(self, request, pk=None):
        """The per-entry predictions, in the source's order, paged; filtered by true class,
        predicted class, correctness. 409 while running."""
        evaluation = self.get_object()
        table = self._rows(evaluation)
        filters = EntryFilterSet(
            request.query_params, EntryRows(table), classes=table["probs"].shape[1]
        )
        if not filters.is_valid():
            raise serializers.ValidationError(filters.errors)
        page = self.paginator.paginate_queryset(filters.qs, request, view=self)
        return self.paginator.get_paginated_response(self._entries(evaluation, page))

    @extend_schema(
        parameters=[OpenApiParameter("per_class", int, description="1..50, default 9.")],
        responses=answers({200: TopPerClassSerializer(many=True), 422: ENDED_BADLY}, 400, 404, 409),
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def top(self, request, pk=None):
        """DIGITS' "top N images per class": per class, the entries most confidently
        given that class."""
        evaluation = self.get_object()
        self._rows(evaluation)
        per_class = _per_class(request.query_params.get("per_class"))
        found = services.top_per_class(evaluation, per_class)
        for row in found:
            row["entries"] = self._entries(evaluation, row.pop("positions"))
        return Response(TopPerClassSerializer(found, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("other", int, required=True), *PAGES],
        responses=answers({200: EvaluationEntrySerializer(many=True), 422: ENDED_BADLY},
                          400, 404, 409),
    )  # fmt: skip
    @action(detail=True, methods=["get"], pagination_class=EntryPages)
    def versus(self, request, pk=None):
        """Entries this evaluation classified right and evaluation ``other`` (of the same
        entries: same dataset stage, or the same uploads) wrong."""
        evaluation = self.get_object()
        other_id = request.query_params.get("other", "")
        if not other_id.isdigit() or len(other_id) > 18:
            raise serializers.ValidationError({"other": ["An evaluation id."]})
        other = permissions.get_object_for(request.user, self.get_queryset(), pk=int(other_id))
        self._rows(evaluation), self._rows(other)
        try:
            positions = services.versus(evaluation, other)
        except services.EvaluationError as exc:
            raise serializers.ValidationError(exc.detail) from None
        page = self.paginator.paginate_queryset(positions.tolist(), request, view=self)
        return self.paginator.get_paginated_response(self._entries(evaluation, page))

    @extend_schema(
        responses=answers({(200, "text/csv"): OpenApiTypes.BINARY, 422: ENDED_BADLY}, 404, 409)
    )
    @action(detail=True, methods=["get"], url_path="csv", url_name="csv")
    def csv(self, request, pk=None):
        """Every entry's predictions as CSV (see docs/api.md for the columns)."""
        evaluation = self.get_object()
        self._rows(evaluation)
        return files.csv_response(evaluation)

    @extend_schema(
        request={"multipart/form-data": EvaluationUpload},
        responses=answers({201: StoredEvaluationUploadSerializer}, 400, 413),
    )
    @action(detail=False, methods=["post"], url_path="uploads")
    def upload(self, request):
        """Store an archive or list to evaluate later (``archive_key`` / ``list_key``)."""
        params = EvaluationUpload(data=request.data)
        params.is_valid(raise_exception=True)
        stored = uploads.store_upload(params.validated_data["file"], request.user)
        return Response(StoredEvaluationUploadSerializer(stored).data, status=201)


def _per_class(value) -> int:
    if value in (None, ""):
        return 9
    if not str(value).isdigit() or not 1 <= int(value) <= 50:
        raise serializers.ValidationError({"per_class": ["A number from 1 to 50."]})
    return int(value)
