"""Shared REST pieces: the permission-aware serializer and viewset bases."""

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, mixins, serializers, status, viewsets

from apps.core import permissions


@extend_schema_field(OpenApiTypes.STR)
class UsernameField(serializers.SlugRelatedField):
    """A user by username; typed for the schema, where a serializer without a model
    (``DatasetCreateSerializer``) cannot tell what a read-only related field is."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="username", **kwargs)


class OwnedSerializerMixin(serializers.Serializer):
    """Owner (read-only), team (by slug) and visibility, validated against memberships."""

    owner = UsernameField(read_only=True)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = getattr(self, "instance", None)
        team = attrs.get("team", getattr(instance, "team", None))
        visibility = attrs.get("visibility", getattr(instance, "visibility", "private"))
        user = self.context["request"].user
        if "team" in attrs and team is not None and not permissions.can_share_with(user, team):
            raise serializers.ValidationError(
                {"team": "You can only share with teams where you are a member or admin."}
            )
        if visibility == "team" and team is None:
            raise serializers.ValidationError({"team": "Choose the team to share with."})
        return attrs


class OwnedModelViewSet(
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


class Conflict(exceptions.APIException):
    """The object is not in a state that allows the request (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
