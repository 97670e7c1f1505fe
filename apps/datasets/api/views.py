from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from apps.core.api import Conflict, OwnedModelViewSet
from apps.core.plugins.catalog import data_ingestion_types
from apps.datasets import services
from apps.datasets.api.serializers import (
    DatasetCreateSerializer,
    DatasetDetailSerializer,
    DatasetSerializer,
    DatasetTypeSerializer,
)
from apps.datasets.models import Dataset
from apps.jobs.services import JobStateError, share_like


class DatasetViewSet(OwnedModelViewSet):
    """Datasets: list, create from any installed dataset type, inspect, change sharing, delete."""

    queryset = Dataset.objects.select_related("owner", "team")
    filterset_fields = ["type", "status", "visibility"]

    def get_serializer_class(self):
        if self.action == "create":
            return DatasetCreateSerializer
        return DatasetDetailSerializer if self.action == "retrieve" else DatasetSerializer

    @extend_schema(request=DatasetCreateSerializer, responses={201: DatasetSerializer})
    def create(self, request, *args, **kwargs):
        serializer = DatasetCreateSerializer(
            data=request.data, context={"request": request, "files": request.FILES}
        )
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        dataset = services.create(
            owner=request.user, type_id=d["type"], options=d["options"], name=d["name"],
            description=d["description"], team=d.get("team"), visibility=d["visibility"],
            processes=d["processes"], max_error_percent=d["max_error_percent"],
        )  # fmt: skip
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


@extend_schema(responses=DatasetTypeSerializer(many=True))
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
        }
        for type_id, cls in sorted(data_ingestion_types().items())
    ]
    return Response(DatasetTypeSerializer(data, many=True).data)
