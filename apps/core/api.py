"""Shared REST pieces: the permission-aware serializer and viewset bases, and the error
answers every operation documents in the schema."""

import logging

from django.db import transaction
from django.http import JsonResponse
from django.views import defaults
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, serializers, status, views, viewsets
from rest_framework.response import Response

from apps.accounts.models import Team
from apps.core import permissions
from apps.core.idempotency import IdempotentMixin
from apps.core.middleware import STORE_UNAVAILABLE_MESSAGE
from apps.core.storage import StoreUnavailable
from apps.core.visibility import Visibility

log = logging.getLogger(__name__)


@extend_schema_field(OpenApiTypes.STR)
class UsernameField(serializers.SlugRelatedField):
    """A user by username; typed for the schema, where a serializer without a model
    (``apps.datasets.requests.BuildRequest``) cannot tell what a read-only related field is."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="username", **kwargs)


class OwnedSerializerMixin(serializers.Serializer):
    """Owner (read-only), team (by slug) and visibility, validated against memberships."""

    owner = UsernameField(read_only=True)

    @property
    def user(self):
        """Who asks: the context's ``user``, or its ``request``'s (a page's form has no
        DRF request)."""
        return self.context["user"] if "user" in self.context else self.context["request"].user

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = getattr(self, "instance", None)
        team = attrs.get("team", getattr(instance, "team", None))
        visibility = attrs.get("visibility", getattr(instance, "visibility", "private"))
        if "team" in attrs and team is not None and not permissions.can_share_with(self.user, team):
            raise serializers.ValidationError(
                {"team": "You can only share with teams where you are a member or admin."}
            )
        if visibility == "team" and team is None:
            raise serializers.ValidationError({"team": "Choose the team to share with."})
        return attrs


class NewOwnedRequest(OwnedSerializerMixin, serializers.Serializer):
    """What every request to create an owned object says besides its own: the name, a
    description, the team and the visibility (``apps.*.requests``)."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PRIVATE)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


#: The error statuses of this API and what each means, as the schema documents them.
ERRORS = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description="Invalid request: the messages by field name (nested like the request), "
        "under `non_field_errors` for the request as a whole, or a `detail` for a body that "
        "could not be parsed.",
    ),
    401: OpenApiResponse(
        ErrorSerializer, description="No, an invalid, an expired or a revoked API token."
    ),
    403: OpenApiResponse(
        ErrorSerializer,
        description="You may see the object but not do this to it; or a read-only API "
        "token on a request that changes something.",
    ),
    404: OpenApiResponse(
        ErrorSerializer,
        description="No such object, or one you may not see (other users' private objects "
        "answer the same), or a page past the last.",
    ),
    409: OpenApiResponse(
        ErrorSerializer, description="The object's state does not allow this now."
    ),
    413: OpenApiResponse(
        ErrorSerializer, description="The request body is larger than the limit it names."
    ),
    422: OpenApiResponse(
        ErrorSerializer,
        description="The request was valid but the model could not do it (it failed to "
        "load or run); the detail says why.",
    ),
    429: OpenApiResponse(
        ErrorSerializer,
        description="Too many failed logins for this username from this address; "
        "wait for the cool-off period it names.",
    ),
    503: OpenApiResponse(
        ErrorSerializer,
        description="A service the request needs (the inference service) did not answer; "
        "try again later.",
    ),
}


def answers(ok: dict, *errors: int) -> dict:
    """``responses`` for ``extend_schema``: the success answers ``ok`` (``{status: body}``)
    and the error ``errors``, with 401 (every operation needs authentication)."""
    return {**ok, **{code: ERRORS[code] for code in sorted({401, *errors})}}


def owned_viewset_answers(serializer, detail_serializer=None):
    """The documented answers of the actions ``OwnedModelViewSet`` provides.

    ``serializer`` is what list and update answer with, ``detail_serializer`` what retrieve
    does (the same by default). A subclass's own ``create`` and extra actions document
    themselves with ``answers``.
    """
    change = answers({200: serializer}, 400, 403, 404, 413)
    return extend_schema_view(
        list=extend_schema(responses=answers({200: serializer(many=True)}, 400, 404)),
        retrieve=extend_schema(responses=answers({200: detail_serializer or serializer}, 404)),
        update=extend_schema(responses=change),
        partial_update=extend_schema(responses=change),
        destroy=extend_schema(responses=answers({204: None}, 403, 404, 409)),
    )


class OwnedModelViewSet(
    IdempotentMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """List/retrieve what the user may see, change and delete what they may.

    Invisible objects answer 404, visible but forbidden ones 403, through
    ``apps.core.permissions``.
    """

    def get_queryset(self):
        return permissions.visible(super().get_queryset(), self.request.user)

    def get_object(self):
        action = {
            "update": permissions.CHANGE,
            "partial_update": permissions.CHANGE,
            "destroy": permissions.DELETE,
        }.get(self.action, getattr(self, "object_permission", permissions.VIEW))
        lookup = {self.lookup_field: self.kwargs[self.lookup_url_kwarg or self.lookup_field]}
        obj = permissions.get_object_for(self.request.user, self.get_queryset(), action, **lookup)
        return obj

    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save(owner=self.request.user)


def not_found(request, exception):
    """``handler404``: a URL no route takes (``/api/v1/jobs/1.5/``) answers under ``/api/`` as
    the API's own 404s do, in JSON; elsewhere with the page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def exception_handler(exc, context):
    """DRF's answers, and a JSON 500 (logged) for an exception nothing handled: API
    clients never get Django's HTML error page. An object store that stayed unreachable
    through its retries is a 503 the client may repeat, as outside DRF
    (``apps.core.middleware.StoreUnavailableMiddleware``)."""
    if isinstance(exc, StoreUnavailable):
        return Response(
            {"detail": STORE_UNAVAILABLE_MESSAGE}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "30"},
        )  # fmt: skip
    response = views.exception_handler(exc, context)
    if response is None:
        request = context.get("request")
        log.error(
            "Unhandled error in %s %s", getattr(request, "method", "?"),
            getattr(request, "path", "?"), exc_info=exc,
        )  # fmt: skip
        response = Response(
            {"detail": "Server error; it was logged. Retry later or report it."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return response


def server_error(request):
    """handler500: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "Server error; it was logged. Retry later or report it."}, status=500
        )
    return defaults.server_error(request)


class Conflict(exceptions.APIException):
    """The object is not in a state that allows the request (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


UNSAFE_METHODS = ("post", "put", "patch", "delete")


def document_read_only_tokens(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation that changes something and
    takes a token may answer 403 to a read-only one (``TokenAuthentication`` refuses it
    before the view runs, so the view's own ``answers`` need not say so)."""
    refused = {
        "description": "A read-only API token on a request that changes something.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for operations in result["paths"].values():
        for method, operation in operations.items():
            if method in UNSAFE_METHODS and operation.get("security"):
                operation["responses"].setdefault("403", refused)
    return result
