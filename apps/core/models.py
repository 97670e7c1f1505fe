from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.core import permissions
from apps.core.visibility import Visibility

__all__ = ["IdempotencyKey", "OwnedModel", "OwnedQuerySet", "Visibility"]


class OwnedQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The objects ``user`` may see (``apps.core.permissions.visible``): the one filter
        every list, page and API asks."""
        return permissions.visible(self, user)


class OwnedModel(models.Model):
    """An entity owned by a user and optionally shared with a team or everybody.

    Who may see, change or delete it is decided by ``apps.core.permissions``.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE
    )

    objects = OwnedQuerySet.as_manager()

    class Meta:
        abstract = True

    def clean(self):
        super().clean()
        if self.visibility == Visibility.TEAM and self.team_id is None:
            raise ValidationError({"team": "Choose the team to share with."})


class IdempotencyKey(models.Model):
    """The first answer to a POST sent with an ``Idempotency-Key`` header
    (``apps.core.idempotency``); ``status`` is NULL while that request runs."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(default=b"", blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="unique_idempotency_key")
        ]

    def __str__(self):
        return f"{self.key} ({self.user_id})"
