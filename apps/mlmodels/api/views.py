from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from apps.core import permissions
from apps.core.api import Conflict, OwnedModelViewSet, answers, owned_viewset_answers
from apps.inference.api.serializers import ClassificationSerializer, ClassifyRequest
from apps.inference.classify import classify as classify_one
from apps.inference.service import InferenceError
from apps.jobs.api.serializers import JobSerializer
from apps.jobs.services import JobStateError
from apps.mlmodels import export, services, single_inference
from apps.mlmodels.api.serializers import (
    CreatedModelsSerializer,
    InferAnswerSerializer,
    InferRequestSerializer,
    TrainedModelDetailSerializer,
    TrainedModelSerializer,
)
from apps.mlmodels.filters import TrainedModelFilterSet
from apps.mlmodels.models import TrainedModel
from apps.mlmodels.requests import TrainRequest


class ModelFileUpload(serializers.Serializer):
    file = serializers.FileField(help_text="A .keras model file (loaded in safe mode).")


class StoredUploadSerializer(serializers.Serializer):
    upload_key = serializers.CharField(help_text="Name it as network.upload_key; it is yours only.")
    name = serializers.CharField()
    size = serializers.IntegerField()


@owned_viewset_answers(TrainedModelSerializer, TrainedModelDetailSerializer)
class TrainedModelViewSet(OwnedModelViewSet):
    """Models: train (one or a sweep), inspect, resume, classify, download, delete."""

    queryset = TrainedModel.objects.select_related("owner", "team", "dataset", "job")
    filterset_class = TrainedModelFilterSet

    def get_serializer_class(self):
        if self.action == "create":
            return TrainRequest
        return TrainedModelDetailSerializer if self.action == "retrieve" else TrainedModelSerializer

    @extend_schema(
        request=TrainRequest,
        responses=answers({201: CreatedModelsSerializer}, 400, 413),
    )
    def create(self, request, *args, **kwargs):
        serializer = TrainRequest(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        try:
            models = services.train(request.user, serializer.validated_data)
        except services.ModelError as exc:
            raise serializers.ValidationError(exc.detail) from None
        created = {"sweep": models[0].sweep, "models": models}
        data = CreatedModelsSerializer(created, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        services.shared(serializer.save())

    def perform_destroy(self, instance):
        try:
            services.delete(instance)
        except JobStateError as exc:
            raise Conflict(str(exc)) from None

    @extend_schema(request=None, responses=answers({201: JobSerializer}, 403, 404, 409))
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Continue training from the last snapshot (after an abort or failure)."""
        model = permissions.get_object_for(
            request.user, self.get_queryset(), permissions.CHANGE, pk=pk
        )
        try:
            job = services.resume(model, request.user)
        except services.CustomCodeRefused as exc:
            raise PermissionDenied(str(exc)) from None
        except services.ModelError as exc:
            raise Conflict(str(exc)) from None
        return Response(JobSerializer(job, context={"request": request}).data, status=201)

    @extend_schema(request=None, responses=answers({201: TrainedModelSerializer}, 400, 404))
    @action(detail=True, methods=["post"])
    def clone(self, request, pk=None):
        """A new model of the caller's, like this one (same dataset, network, solver), trained
        from the start; needs what creating it needs (400 naming the field otherwise)."""
        try:
            new = services.clone(self.get_object(), request.user)
        except services.ModelError as exc:
            raise serializers.ValidationError(exc.detail) from None
        return Response(TrainedModelSerializer(new, context={"request": request}).data, status=201)

    @extend_schema(
        request={"multipart/form-data": ModelFileUpload},
        responses=answers({201: StoredUploadSerializer}, 400, 403, 413),
    )
    @action(detail=False, methods=["post"], url_path="uploads")
    def upload(self, request):
        """Store a .keras file to train from: ``network: {"source": "upload", "upload_key":
        …}`` in a new model. Needs the permission to run custom code (403 otherwise)."""
        params = ModelFileUpload(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            stored = services.store_model_file(params.validated_data["file"], request.user)
        except services.CustomCodeRefused as exc:
            raise PermissionDenied(str(exc)) from None
        return Response(StoredUploadSerializer(stored).data, status=201)

    @extend_schema(
        request={"multipart/form-data": ClassifyRequest, "application/json": ClassifyRequest},
        responses=answers({200: ClassificationSerializer}, 400, 404, 409, 413, 422, 503),
    )
    @action(detail=True, methods=["post"])
    def classify(self, request, pk=None):
        """The ``top_n`` most probable classes of an image (upload, or a dataset entry you
        may see), by a chosen epoch, answered at once by the warm inference service (no
        job). 409: no snapshot yet; 422: the model failed to run; 503: no inference
        service answered."""
        model = self.get_object()
        params = ClassifyRequest(data=request.data)
        params.is_valid(raise_exception=True)
        q = params.validated_data
        image = q["image"].read() if "image" in q else None
        try:
            answer = classify_one(
                model, request.user, image=image, stage=q["stage"], index=q.get("index"),
                top_n=q["top_n"], epoch=q.get("epoch"), layers=q["layers"],
            )  # fmt: skip
        except InferenceError as exc:
            if exc.status == 400:
                raise serializers.ValidationError({exc.field or "image": [str(exc)]}) from None
            if exc.status == 409:
                raise Conflict(str(exc)) from None
            return Response({"detail": str(exc)}, status=exc.status)
        return Response(answer)

    @extend_schema(
        request={"multipart/form-data": InferRequestSerializer},
        responses=answers(
            {
                200: InferAnswerSerializer,
                422: OpenApiResponse(
                    OpenApiTypes.OBJECT,
                    description="The input was read but could not be used, or the model "
                    "failed to run: messages by field, as for 400.",
                ),
                503: OpenApiResponse(
                    OpenApiTypes.OBJECT, description="No inference service answered."
                ),
            },
            400,
            404,
            409,
            413,
        ),  # fmt: skip
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def infer(self, request, pk=None):
        """Test the model on the inputs its dataset type's inference form chooses (DIGITS'
        "Test"): multipart with that form's fields — ``GET /api/v1/dataset-types/``
        describes them, e.g. Sunnybrook's ``dicom_file``, ``contour_file``,
        ``validation_record`` — and optionally ``epoch``. Errors name the field
        (``non_field_errors`` for the input as a whole)."""
        model = self.get_object()
        form_class = single_inference.inference_form_class(model)
        if form_class is None:
            raise Conflict("The model's dataset type has no inference form.")
        params = InferRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            results = single_inference.read_inputs(
                model, request.user, form_class(request.data, request.FILES)
            )
            epoch = single_inference.predict(model, results, params.validated_data.get("epoch"))
        except single_inference.InferenceInputError as exc:
            errors = {
                ("non_field_errors" if k == "__all__" else k): v for k, v in exc.errors.items()
            }
            return Response(errors, status=exc.status)
        return Response(single_inference.api_answer(model, results, epoch))

    @extend_schema(
        parameters=[OpenApiParameter("epoch", int)],
        responses=answers({(200, "application/gzip"): OpenApiTypes.BINARY}, 404),
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The model at an epoch as a .tar.gz (model.keras, labels, preprocessing)."""
        return export.download_response(self.get_object(), request.query_params.get("epoch"))
