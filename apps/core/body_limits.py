"""Request-body limits and upload authentication, applied before a body is read.

Django's ASGI handler reads a whole request body (to a temporary file past
``FILE_UPLOAD_MAX_MEMORY_SIZE``) before any middleware runs, so a limit checked
in Django middleware comes after the disk has filled. ``RequestBodyGuard``
wraps the ASGI application instead:

- a declared ``Content-Length`` over the limit answers 413 at once, unread;
- a body without one (chunked) is counted as it arrives and cut off with 413
  as soon as it passes the limit;
- a multipart upload (the only kind of large body) from a client with neither
  a logged-in session nor a valid API token answers 401/403 before its body
  is read.

``apps.core.middleware.RequestSizeLimitMiddleware`` applies the same limits
where there is no ASGI server (the test client, WSGI).
"""

import json
from types import SimpleNamespace

from channels.db import database_sync_to_async
from django.conf import settings


def is_upload(content_type: str) -> bool:
    return content_type.startswith("multipart/")


def body_limit(content_type: str) -> int:
    """Bytes allowed: ``DIGITS_MAX_UPLOAD_MB`` for uploads, ``DATA_UPLOAD_MAX_MEMORY_SIZE`` else."""
    return (
        settings.MAX_UPLOAD_BYTES
        if is_upload(content_type)
        else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    )


def size_text(n: int) -> str:
    """``n`` bytes for people: "2048 MB", "1.5 MB", "500 KB", "900 bytes"."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def too_large_message(content_type: str, length: int | None) -> str:
    """The 413 message; ``length`` None when the body had no Content-Length."""
    limit = body_limit(content_type)
    what = "Upload" if is_upload(content_type) else "Request body"
    size = size_text(length) if length is not None else f"more than {size_text(limit)}"
    return f"{what} too large: {size}; the limit is {size_text(limit)}."


def wants_json(path: str, accept: str) -> bool:
    return path.startswith("/api/") or "json" in accept


class RequestBodyGuard:
    """ASGI middleware for HTTP: body limits and upload authentication before the body."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {name: value.decode("latin-1") for name, value in scope.get("headers", ())}
        content_type = headers.get(b"content-type", "")
        json_answer = wants_json(scope.get("path", ""), headers.get(b"accept", ""))
        limit = body_limit(content_type)
        try:
            length = int(headers[b"content-length"])
        except (KeyError, ValueError):
            length = None
        if length is not None and length > limit:
            return await _answer(send, 413, too_large_message(content_type, length), json_answer)
        if is_upload(content_type) and not await _authenticated(headers):
            if json_answer:
                detail = "Authentication credentials were not provided."
                return await _answer(send, 401, detail, True, [(b"www-authenticate", b"Token")])
            return await _answer(send, 403, "Log in to upload files.", False)

        received = 0
        exceeded = False
        started = False

        async def counted_receive():
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django sees the client go away and drops what it spooled.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, watched_send)
        if exceeded and not started:
            await _answer(send, 413, too_large_message(content_type, None), json_answer)


async def _answer(send, status: int, message: str, as_json: bool, extra_headers=()):
    if as_json:
        body, content_type = json.dumps({"detail": message}).encode(), b"application/json"
    else:
        body, content_type = message.encode(), b"text/plain; charset=utf-8"
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is not read: the connection cannot be reused.
        (b"connection", b"close"),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@database_sync_to_async
def _authenticated(headers: dict[bytes, str]) -> bool:
    """A valid API token in ``Authorization``, or a session cookie of a logged-in user."""
    from django.contrib.auth import get_user
    from django.http import parse_cookie
    from django.utils.module_loading import import_string

    from apps.accounts.authentication import key_from_header
    from apps.accounts.models import ApiToken

    authorization = headers.get(b"authorization")
    if authorization:
        key = key_from_header(authorization.encode("latin-1"))
        return key is not None and ApiToken.authenticate(key) is not None
    session_key = parse_cookie(headers.get(b"cookie", "")).get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return False
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key)
    return get_user(SimpleNamespace(session=store)).is_authenticated
