"""``Idempotency-Key``: a client may retry a POST safely (docs/api.md).

The first request with a key stores its answer (status and body); the same key from the
same user within ``DIGITS_IDEMPOTENCY_HOURS`` answers that again (header
``Idempotent-Replayed: true``) and creates nothing; the same key with a different request
(method, path or body) answers 422; while the first still runs, 409. Server errors (5xx)
are not kept: the client may retry them. ``IdempotentMixin`` adds this to a DRF view; the
reaper deletes expired keys (``purge``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework import exceptions, status

from apps.core.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_LENGTH = 255


class Replay(Exception):
    """Carries the stored answer out of ``initial`` (``IdempotentMixin.handle_exception``)."""

    def __init__(self, response: HttpResponse):
        self.response = response


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = (
        "This Idempotency-Key was used for a different request; use a new key for a new request."
    )


class KeyInProgress(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_in_progress"
    default_detail = "A request with this Idempotency-Key is still running; retry later."


def _plain(value):
    if isinstance(value, UploadedFile):  # compared by name and size, not read again
        return {"file": value.name, "size": value.size}
    return value


def fingerprint(request) -> str:
    data = request.data
    if hasattr(data, "lists"):  # QueryDict (form or multipart)
        data = {name: [_plain(v) for v in values] for name, values in data.lists()}
    body = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def expired_before():
    return timezone.now() - timedelta(hours=settings.DIGITS_IDEMPOTENCY_HOURS)


def begin(request, key: str) -> IdempotencyKey:
    """Claim ``key`` for this request, or raise Replay / KeyReused / KeyInProgress."""
    if len(key) > MAX_LENGTH or not key.isprintable():
        raise exceptions.ValidationError({HEADER: f"At most {MAX_LENGTH} printable characters."})
    digest = fingerprint(request)
    IdempotencyKey.objects.filter(
        user=request.user, key=key, created_at__lt=expired_before()
    ).delete()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(user=request.user, key=key, fingerprint=digest)
    except IntegrityError:
        pass
    first = IdempotencyKey.objects.filter(user=request.user, key=key).first()
    if first is None:  # finished with a server error and released meanwhile
        raise KeyInProgress()
    if first.fingerprint != digest:
        raise KeyReused()
    if first.status is None:
        raise KeyInProgress()
    response = HttpResponse(bytes(first.body), status=first.status, content_type=first.content_type)
    response["Idempotent-Replayed"] = "true"
    raise Replay(response)


def finish(record: IdempotencyKey, response) -> None:
    """Keep the answer, or release the key after a server error."""
    if response.status_code >= 500:
        record.delete()
        return
    if hasattr(response, "render") and not response.is_rendered:
        response.render()
    record.status = response.status_code
    record.content_type = response.get("Content-Type", "application/json")
    record.body = response.content
    record.save(update_fields=["status", "content_type", "body"])


def purge() -> int:
    """Delete the keys past their lifetime; how many."""
    return IdempotencyKey.objects.filter(created_at__lt=expired_before()).delete()[0]


class IdempotentMixin:
    """POSTs of this DRF view honour ``Idempotency-Key`` (after authentication)."""

    _idempotency = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key = request.headers.get(HEADER)
        if request.method == "POST" and key and request.user.is_authenticated:
            self._idempotency = begin(request, key)

    def handle_exception(self, exc):
        if isinstance(exc, Replay):
            return exc.response
        try:
            return super().handle_exception(exc)
        except BaseException:  # not answered: release the key for a retry
            if self._idempotency is not None:
                self._idempotency.delete()
                self._idempotency = None
            raise

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self._idempotency is not None:
            record, self._idempotency = self._idempotency, None
            finish(record, response)
        return response
