"""The artifact store: where datasets, checkpoints, models and logs keep their bytes.

Call ``get_store()``; it builds one store from the settings on first use (never at import):

- ``DIGITS_S3["endpoint"]`` set: an ``S3Store`` on that bucket (keys ``endpoint``,
  ``access_key``, ``secret_key``, ``bucket``, ``secure``, ``region``, optional
  ``public_endpoint``);
- otherwise a ``LocalStore`` below ``DIGITS_ARTIFACT_ROOT``;
- in a job process (``DIGITS_JOB_ARTIFACT_SOCKET``), a ``GateStore`` that asks the worker.
"""

import os
import threading

from django.core.signals import setting_changed

from .base import (
    STAGING_PREFIX,
    ArtifactNotFound,
    ArtifactStore,
    StoreUnavailable,
    validate_key,
)
from .local import LocalStore

__all__ = [
    "STAGING_PREFIX",
    "ArtifactNotFound",
    "ArtifactStore",
    "LocalStore",
    "S3Store",
    "StoreUnavailable",
    "get_store",
    "reset_store",
    "validate_key",
]


def __getattr__(name: str):
    # ``S3Store`` is imported on first use: its client library (minio, with its crypto)
    # costs every process a fifth of a second at start, and most never talk to S3.
    if name == "S3Store":
        from .s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_store: ArtifactStore | None = None
_lock = threading.Lock()


def get_store() -> ArtifactStore:
    """The process-wide artifact store, built from the settings on first call."""
    global _store
    with _lock:
        if _store is None:
            _store = _build_store()
        return _store


def reset_store() -> None:
    """Forget the store; the next ``get_store()`` builds a new one from the settings."""
    global _store
    with _lock:
        _store = None


def _build_store() -> ArtifactStore:
    from django.conf import settings

    gate = getattr(settings, "DIGITS_JOB_ARTIFACT_SOCKET", "")
    if gate:  # a job process: no credential, every request checked by its worker
        from .gate import GateStore

        return GateStore(gate)
    s3 = getattr(settings, "DIGITS_S3", None) or {}
    if s3.get("endpoint"):
        from .s3 import S3Store

        return S3Store(
            endpoint=s3["endpoint"],
            access_key=s3.get("access_key") or "",
            secret_key=s3.get("secret_key") or "",
            bucket=s3["bucket"],
            secure=bool(s3.get("secure")),
            region=s3.get("region") or None,
            public_endpoint=s3.get("public_endpoint") or None,
        )
    return LocalStore(settings.DIGITS_ARTIFACT_ROOT)


def _on_setting_changed(*, setting: str, **kwargs: object) -> None:
    # override_settings / pytest-django's ``settings`` fixture swap the backend in tests.
    if setting in ("DIGITS_S3", "DIGITS_ARTIFACT_ROOT"):
        reset_store()


def _after_fork() -> None:
    # A forked child (multiprocessing pools, job slots) must not share the parent's HTTP
    # connections; and the lock may have been held by a parent thread that is gone here.
    global _store, _lock
    _store, _lock = None, threading.Lock()


setting_changed.connect(_on_setting_changed, dispatch_uid="digits.storage.reset")
os.register_at_fork(after_in_child=_after_fork)
