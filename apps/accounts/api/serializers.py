from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework import serializers

from apps.accounts.models import ApiToken, Membership, Team, TokenScope


class MembershipSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Membership
        fields = ["user", "role", "joined_at"]


class TeamSerializer(serializers.ModelSerializer):
    members = MembershipSerializer(source="memberships", many=True, read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "description", "members"]


class UserSerializer(serializers.ModelSerializer):
    teams = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "is_staff", "teams"]

    def get_teams(self, user) -> list[dict]:
        return [
            {"slug": m.team.slug, "name": m.team.name, "role": m.role}
            for m in user.memberships.select_related("team")
        ]


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as listed and as asked for: ``expires_at`` or ``expires_in_days`` (not both;
    neither: it never expires) and a ``scope``, full by default."""

    expires_in_days = serializers.IntegerField(
        write_only=True, required=False, min_value=1, max_value=3650,
        help_text="Expire this many days from now (instead of `expires_at`).",
    )  # fmt: skip

    class Meta:
        model = ApiToken
        fields = [
            "id", "name", "prefix", "scope", "created_at", "last_used_at", "expires_at",
            "expires_in_days",
        ]  # fmt: skip
        read_only_fields = ["prefix", "created_at", "last_used_at"]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        days = attrs.pop("expires_in_days", None)
        if days is not None:
            if attrs.get("expires_at") is not None:
                raise serializers.ValidationError(
                    {"expires_in_days": "Give expires_at or expires_in_days, not both."}
                )
            attrs["expires_at"] = timezone.now() + timedelta(days=days)
        return attrs

    def issue(self, user) -> tuple[ApiToken, str]:
        """Issue the validated token to ``user``; the token with its clear key."""
        data = self.validated_data
        token, key = ApiToken.issue(
            user,
            data["name"],
            data.get("expires_at"),
            data.get("scope", TokenScope.FULL),
        )
        token.key = key
        return token, key


class TokenExchangeSerializer(ApiTokenSerializer):
    """A username and password for a new token of that user (named ``script`` unless
    named)."""

    username = serializers.CharField(write_only=True)
    password = serializers.CharField(write_only=True, style={"input_type": "password"})

    class Meta(ApiTokenSerializer.Meta):
        fields = ["username", "password", *ApiTokenSerializer.Meta.fields]
        extra_kwargs = {"name": {"required": False, "default": "script"}}


class NewApiTokenSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]
