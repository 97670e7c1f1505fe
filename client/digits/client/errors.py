"""Exceptions of the SDK: one per kind of answer a script handles differently.

Every error the server answers becomes an :class:`APIError` subclass carrying the HTTP
status, the server's ``detail`` and, for a 400, its field errors as the API sent them
(``{"options": {"width": ["…"]}}``), flattened by :meth:`APIError.field_messages`.
"""

from __future__ import annotations

from typing import Any


class DigitsError(Exception):
    """Base class of every error raised by ``digits.client``."""


class ConfigurationError(DigitsError):
    """No server URL or no token: neither given, nor in the environment or the config file."""


class APIError(DigitsError):
    """The server answered with an error status."""

    def __init__(self, status: int, body: Any, method: str = "", url: str = ""):
        self.status = status
        self.body = body
        self.method = method
        self.url = url
        super().__init__(self._summary())

    @property
    def detail(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("detail"), str):
            return self.body["detail"]
        return None

    @property
    def field_errors(self) -> dict[str, Any]:
        """The errors per field (everything but ``detail``), as the API sent them."""
        if not isinstance(self.body, dict):
            return {}
        return {key: value for key, value in self.body.items() if key != "detail"}

    def field_messages(self) -> list[tuple[str, str]]:
        """``(dotted.field.path, message)`` for every field error, nested ones included."""
        return list(_flatten(self.field_errors, ""))

    def _summary(self) -> str:
        where = f"{self.method} {self.url}: " if self.url else ""
        if self.detail:
            return f"{where}{self.status} {self.detail}"
        fields = "; ".join(f"{path}: {message}" for path, message in self.field_messages())
        if fields:
            return f"{where}{self.status} {fields}"
        return f"{where}{self.status} {str(self.body)[:300]}"


class ValidationError(APIError):
    """400: the request was refused; :attr:`field_errors` names each field at fault."""


class AuthenticationError(APIError):
    """401: no token, or a wrong, expired or revoked one."""


class PermissionDenied(APIError):
    """403: you may see the object but not do this (or the token is read-only)."""


class NotFound(APIError):
    """404: no such object, or another user's private one (the same answer)."""


class Conflict(APIError):
    """409: the object's state forbids it now (still training, not built yet, ...)."""


class RateLimited(APIError):
    """429: too many failed logins; wait before trying again."""


class ServerError(APIError):
    """5xx: the server failed; the request may be retried later."""


_BY_STATUS = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}


def error_for(status: int, body: Any, method: str = "", url: str = "") -> APIError:
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    return cls(status, body, method, url)


class WatchError(DigitsError):
    """Following a job over its websocket failed for good (refused, or gave up reconnecting)."""

    def __init__(self, message: str, code: int | None = None):
        self.code = code
        super().__init__(message)


def _flatten(errors: Any, prefix: str):
    if isinstance(errors, list):
        if all(isinstance(e, str) or _is_form_error(e) for e in errors):
            for error in errors:
                yield prefix or "non_field_errors", _message(error)
        else:  # a list serializer: one entry of errors per item
            for index, value in enumerate(errors):
                yield from _flatten(value, f"{prefix}.{index}" if prefix else str(index))
    elif isinstance(errors, dict) and not _is_form_error(errors):
        for key, value in errors.items():
            # A form's own errors (Django's "__all__") belong to the form's field.
            name = prefix if key in ("__all__", "non_field_errors") and prefix else str(key)
            yield from _flatten(value, f"{prefix}.{key}" if prefix and name != prefix else name)
    elif errors not in (None, ""):
        yield prefix or "non_field_errors", _message(errors)


def _is_form_error(value: Any) -> bool:
    """Django's form error JSON: ``{"message": "...", "code": "..."}``."""
    return isinstance(value, dict) and "message" in value


def _message(value: Any) -> str:
    return str(value["message"]) if _is_form_error(value) else str(value)
