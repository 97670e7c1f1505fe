"""Retrying object-store calls through a restart or a network blip.

``call(fn, ...)`` runs ``fn`` and, on a *transient* error (connection refused or reset,
timeouts, HTTP 5xx, ``SlowDown``), tries again with exponential backoff and full jitter
until ``DIGITS_STORAGE_RETRY_SECONDS`` have passed; then it raises ``StoreUnavailable``,
which the job engine treats as an infrastructure failure (see docs/deploy.md, "Object
store and database faults"). A *permanent* error (4xx, ``NoSuchKey``, a bad argument) is
raised at once: retrying it cannot help. Counters are in ``apps.core.storage.stats``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import urllib3.exceptions
from minio.error import InvalidResponseError, S3Error, ServerError

from . import stats
from .base import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY = 0.2
MAX_DELAY = 5.0
#: S3 error codes that say "try again later" (the rest of the 4xx family is permanent).
TRANSIENT_CODES = frozenset(
    {"SlowDown", "SlowDownRead", "SlowDownWrite", "RequestTimeout", "InternalError",
     "ServiceUnavailable", "RequestTimeTooSkewed", "OperationAborted"}
)  # fmt: skip


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` may go away by itself (an outage, not a wrong request)."""
    if isinstance(exc, StoreUnavailable):
        return False  # already the verdict of an earlier retry loop
    if isinstance(exc, S3Error):
        status = getattr(exc.response, "status", 0) or 0
        return exc.code in TRANSIENT_CODES or status >= 500
    if isinstance(exc, ServerError):
        return exc.status_code >= 500 or exc.status_code == 429
    if isinstance(exc, InvalidResponseError):
        return True  # an HTML error page from a proxy in front of a restarting server
    # Refused, reset, timed out, retries of urllib3 exhausted:
    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def retry_seconds() -> float:
    from django.conf import settings

    return float(getattr(settings, "DIGITS_STORAGE_RETRY_SECONDS", 60))


def call(
    fn: Callable[[], T],
    what: str = "",
    rewind: Callable[[], object] | None = None,
) -> T:
    """``fn()``, tried again on transient errors for ``DIGITS_STORAGE_RETRY_SECONDS``.

    ``rewind`` runs before each new try (an upload seeks its stream back to the start).
    """
    deadline = time.monotonic() + retry_seconds()
    delay = FIRST_DELAY
    tries = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            tries += 1
            pause = random.uniform(0, delay)  # full jitter: replicas do not retry in step
            if time.monotonic() + pause > deadline:
                stats.count("failures")
                log.error("object store: %s failed after %d tries: %s", what, tries, exc)
                raise StoreUnavailable(f"The object store is unreachable ({what}): {exc}") from exc
            stats.count("retries")
            if tries == 1:
                log.warning("object store: %s failed (%s); retrying", what, exc)
            time.sleep(pause)
            delay = min(MAX_DELAY, delay * 2)
            if rewind is not None:
                rewind()
