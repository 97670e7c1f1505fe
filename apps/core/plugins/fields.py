"""Form fields plugin forms share."""

from pathlib import Path

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError


def confine(path: str | Path) -> Path:
    """Resolve ``path`` and require it to lie under one of ``DIGITS_SERVER_DATA_ROOTS``."""
    resolved = Path(path).expanduser().resolve()
    for root in settings.DIGITS_SERVER_DATA_ROOTS:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    roots = ", ".join(str(r) for r in settings.DIGITS_SERVER_DATA_ROOTS)
    raise ValidationError(
        f"{path} is outside the folders this server may read from ({roots}; "
        "see DIGITS_SERVER_DATA_ROOTS).",
        code="outside_roots",
    )


class ServerFolderField(forms.CharField):
    """A folder on the server, inside the allowed data roots, that exists. Cleans to a str."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        path = confine(value)
        if not path.is_dir():
            raise ValidationError(f"Folder {value} does not exist on the server.", code="missing")
        return str(path)
