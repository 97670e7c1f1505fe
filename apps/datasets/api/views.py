from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action, api_view
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.reverse import reverse

from apps.core.api import Conflict, OwnedModelViewSet, answers, owned_viewset_answers
from apps.core.plugins import STAGES
from apps.core.plugins.catalog import data_ingestion_types
from apps.core.schema import form_json_schema
from apps.datasets import files, queries, services
from apps.datasets.api.serializers import (
    DatasetDetailSerializer,
    DatasetEntrySerializer,
    DatasetSerializer,
    DatasetTypeSerializer,
    DatasetUploadSerializer,
)
from apps.datasets.filters import DatasetFilterSet
from apps.datasets.models import Dataset
from apps.datasets.requests import BuildRequest
from apps.jobs.services import JobStateError, share_like

#: What the dataset files answer: JSON (any), or bytes of another media type (without
#: parameters: ``text/plain``, not ``text/plain; charset=utf-8``).
FILE_ANSWERS = {
    (200, media_type): OpenApiTypes.ANY if media_type == "application/json" else OpenApiTypes.BINARY
    for media_type in sorted(
        {content_type.split(";")[0] for content_type in files.DOWNLOADS.values()}
    )
}


class EntryPages(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


@owned_viewset_answers(DatasetSerializer, DatasetDetailSerializer)
class DatasetViewSet(OwnedModelViewSet):
    """Datasets: list, create from any installed dataset type, inspect, change sharing, delete;
    a built dataset's entries, their images and its files."""

    queryset = Dataset.objects.select_related("owner", "team")
    filterset_class = DatasetFilterSet

    def get_serializer_class(self):
        if self.action == "create":
            return BuildRequest
        return DatasetDetailSerializer if self.action == "retrieve" else DatasetSerializer

    @extend_schema(
        request={
            "application/json": BuildRequest,
            "multipart/form-data": DatasetUploadSerializer,
        },
        responses=answers({201: DatasetSerializer}, 400, 413),
    )
    def create(self, request, *args, **kwargs):
        serializer = BuildRequest(
            data=request.data, context={"request": request, "files": request.FILES}
        )
        serializer.is_valid(raise_exception=True)
        dataset = services.build(request.user, serializer.validated_data)
        return Response(
            DatasetSerializer(dataset, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    def perform_update(self, serializer):
        instance = serializer.save()
        share_like(instance.job_id, instance)

    def perform_destroy(self, instance):
        try:
            services.delete(instance)
        except (services.DatasetInUse, JobStateError) as exc:
            raise Conflict(str(exc)) from None

    def _ready_object(self) -> Dataset:
        dataset = self.get_object()
        if dataset.status != Dataset.Status.READY:
            raise Conflict(f"The dataset is not built (its status is {dataset.status}).")
        return dataset

    @extend_schema(
        parameters=[
            OpenApiParameter("stage", str, enum=list(STAGES), description="Default train."),
            OpenApiParameter("label", int, description="Only entries of this class index."),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description="At most 500; default 100."),
        ],
        responses=answers({200: DatasetEntrySerializer(many=True)}, 400, 404, 409),
    )
    @action(detail=True, methods=["get"], pagination_class=EntryPages)
    def entries(self, request, pk=None):
        """The entries of one stage, in order, paged; with ``label``, those of one class.

        What the explore page shows: each entry's index, class and the URL of its image.
        """
        dataset = self._ready_object()
        try:
            stage, label = queries.entry_filter(
                dataset,
                request.query_params.get("stage", "train"),
                request.query_params.get("label", ""),
            )
        except queries.EntryQueryError as exc:
            raise serializers.ValidationError({exc.field: [str(exc)]}) from None
        paginator = self.paginator
        indices = queries.entry_indices(dataset, stage, label)
        results = queries.entry_rows(
            dataset, stage, paginator.paginate_queryset(indices, request, view=self)
        )
        for row in results:
            row["image"] = reverse(
                "dataset-entry-image",
                kwargs={"pk": dataset.pk, "stage": stage, "index": row["index"]},
                request=request,
            )
        return paginator.get_paginated_response(DatasetEntrySerializer(results, many=True).data)

    @extend_schema(responses=answers({(200, "image/png"): OpenApiTypes.BINARY}, 404, 409))
    @action(
        detail=True,
        methods=["get"],
        url_path=r"entries/(?P<stage>train|val|test)/(?P<index>[0-9]+)/image",
        url_name="entry-image",
    )
    def entry_image(self, request, pk=None, stage=None, index=None):
        """One entry as a PNG, pictured by its dataset type (the explore page's images)."""
        return files.entry_response(self._ready_object(), stage, int(index))

    @extend_schema(responses=answers(FILE_ANSWERS, 404, 409))
    @action(detail=True, methods=["get"], url_path=r"files/(?P<name>[A-Za-z0-9_.]+)")
    def file(self, request, pk=None, name=None):
        """A file of the built dataset: manifest.json, labels.txt, errors.json, mean.png,
        mean.npy (those it has)."""
        return files.file_response(self._ready_object(), name)


def _describe_form(form_class) -> dict:
    form = form_class()
    return {
        name: {
            "type": type(field).__name__,
            "required": field.required,
            "help_text": str(field.help_text),
            "initial": field.initial,
            **({"choices": [c for c, _ in field.choices]} if hasattr(field, "choices") else {}),
        }
        for name, field in form.fields.items()
    }


@extend_schema(responses=answers({200: DatasetTypeSerializer(many=True)}))
@api_view(["GET"])
def dataset_types(request):
    """Installed dataset types and the options each one's form takes."""
    data = [
        {
            "id": type_id,
            "title": cls.get_title(),
            "category": cls.get_category(),
            "plugin": cls.plugin_name,
            "options": _describe_form(cls.get_dataset_form()),
            "options_schema": form_json_schema(cls.get_dataset_form()),
        }
        for type_id, cls in sorted(data_ingestion_types().items())
    ]
    return Response(DatasetTypeSerializer(data, many=True).data)
