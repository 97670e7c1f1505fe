import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )
    run_custom_code = models.BooleanField(
        "members may run custom code",
        default=False,
        help_text="The team's members and admins (not its viewers) may train custom network "
        "code and uploaded model files. Grant it to one user with the permission "
        "“mlmodels | model | Can run custom network code and uploaded models”.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    """What a team member may do with the team's shared objects.

    viewer: see them; member: see them, change them and create objects for the
    team; admin: also delete them and manage the team's members.
    """

    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="unique_team_membership")
        ]
        ordering = ["team__name", "user__username"]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class TokenScope(models.TextChoices):
    """What an API token may do: ``read`` makes only safe requests (GET, HEAD, OPTIONS)
    and follows websockets; ``full`` does whatever its user may."""

    READ = "read", "Read only"
    FULL = "full", "Full"


class ApiToken(models.Model):
    """A REST API credential. Only its SHA-256 is stored; the key is shown once."""

    PREFIX_LENGTH = 8

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=PREFIX_LENGTH, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    scope = models.CharField(max_length=4, choices=TokenScope.choices, default=TokenScope.FULL)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls, user, name: str, expires_at=None, scope: str = TokenScope.FULL
    ) -> tuple["ApiToken", str]:
        """Create a token and return it with its clear-text key (never stored)."""
        key = secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name,
            prefix=key[: cls.PREFIX_LENGTH],
            key_hash=hash_token(key),
            expires_at=expires_at,
            scope=scope,
        )
        return token, key

    @classmethod
    def authenticate(cls, key: str) -> "ApiToken | None":
        """The unexpired token ``key`` of an active user (``.user`` loaded), or None."""
        token = (
            cls.objects.active()
            .select_related("user")
            .filter(key_hash=hash_token(key), user__is_active=True)
            .first()
        )
        if token is None:
            return None
        # Touch at most once a minute: a token used by a busy script must not
        # turn every API read into a write.
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token

    @property
    def read_only(self) -> bool:
        return self.scope == TokenScope.READ
