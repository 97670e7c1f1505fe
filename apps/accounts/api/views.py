from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from apps.accounts.api.serializers import (
    ApiTokenSerializer,
    NewApiTokenSerializer,
    TeamSerializer,
    UserSerializer,
)
from apps.accounts.models import ApiToken, Team
from apps.core.api import answers


@extend_schema(responses=answers({200: UserSerializer}))
@api_view(["GET"])
def me(request):
    """The authenticated user and their teams."""
    return Response(UserSerializer(request.user).data)


@extend_schema_view(
    list=extend_schema(responses=answers({200: TeamSerializer(many=True)}, 404)),
    retrieve=extend_schema(responses=answers({200: TeamSerializer}, 404)),
)
class TeamViewSet(viewsets.ReadOnlyModelViewSet):
    """Teams the user belongs to (every team for staff)."""

    serializer_class = TeamSerializer
    lookup_field = "slug"

    def get_queryset(self):
        teams = Team.objects.prefetch_related("memberships__user")
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return teams.none()
        if self.request.user.is_staff:
            return teams
        return teams.filter(memberships__user=self.request.user)


@extend_schema_view(
    list=extend_schema(responses=answers({200: ApiTokenSerializer(many=True)}, 404)),
    destroy=extend_schema(responses=answers({204: None}, 404)),
)
class ApiTokenViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    """The user's own API tokens. Creating one returns its key once."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(
        request=ApiTokenSerializer, responses=answers({201: NewApiTokenSerializer}, 400, 413)
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, _ = serializer.issue(request.user)
        return Response(NewApiTokenSerializer(token).data, status=status.HTTP_201_CREATED)
