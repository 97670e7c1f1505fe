"""Who an owned object is shown to, besides its owner (``OwnedModel.visibility``)."""

from django.db import models


class Visibility(models.TextChoices):
    PRIVATE = "private", "Private (only me)"
    TEAM = "team", "Team"
    PUBLIC = "public", "Public (every user)"
