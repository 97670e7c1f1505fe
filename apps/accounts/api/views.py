from django.contrib.auth import authenticate, user_logged_in
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response

from apps.accounts.api.serializers import (
    ApiTokenSerializer,
    NewApiTokenSerializer,
    TeamSerializer,
    TokenExchangeSerializer,
    UserSerializer,
)
from apps.accounts.lockout import lockout_message
from apps.accounts.models import ApiToken, Team
from apps.core.api import ERRORS, answers
from apps.core.idempotency import IdempotentMixin


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
    IdempotentMixin, mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin,
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

    @extend_schema(
        request=TokenExchangeSerializer,
        responses={201: NewApiTokenSerializer, **{code: ERRORS[code] for code in (400, 413, 429)}},
        auth=[],
    )
    @action(
        detail=False, methods=["post"], permission_classes=[permissions.AllowAny],
        authentication_classes=[], serializer_class=TokenExchangeSerializer,
    )  # fmt: skip
    def exchange(self, request):
        """A new token for a username and password, for scripts that have no token yet.

        Failures count toward the same lockout as the login page's (django-axes): past the
        limit, even the right password answers 429 until the cool-off ends.
        """
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        credentials = serializer.validated_data
        # The HttpRequest, as axes keeps its per-request state there.
        user = authenticate(
            request._request,
            username=credentials.pop("username"),
            password=credentials.pop("password"),
        )
        if getattr(request._request, "axes_locked_out", False):
            return Response({"detail": lockout_message()}, status=429)
        if user is None:
            # Unknown user, wrong password or inactive account: one answer for all three.
            return Response({"detail": "Wrong username or password."}, status=400)
        # A login without a session: axes resets the failure count and logs the access,
        # Django records last_login.
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        token, _ = serializer.issue(user)
        return Response(NewApiTokenSerializer(token).data, status=status.HTTP_201_CREATED)
