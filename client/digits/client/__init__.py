"""The Python SDK of the digits training platform (``pip install ./client``).

Needs only ``requests`` and ``websockets``: no Django, no TensorFlow. See ``docs/sdk.md``.
"""

from digits.client.api import Client
from digits.client.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    Conflict,
    DigitsError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    ValidationError,
    WatchError,
)
from digits.client.objects import Dataset, Event, Job, Model, Token

__all__ = [
    "APIError", "AuthenticationError", "Client", "ConfigurationError", "Conflict", "Dataset",
    "DigitsError", "Event", "Job", "Model", "NotFound", "PermissionDenied", "RateLimited",
    "ServerError", "Token", "ValidationError", "WatchError",
]  # fmt: skip
