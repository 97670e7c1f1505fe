"""What every websocket under ``/ws/`` shares: close codes, subprotocols, Origin checks.

A refused socket is accepted and then closed with one of the codes below, so a
browser sees the code (a refusal during the handshake reaches scripts as 1006
and looks like a network failure worth retrying). Pages stop retrying on 44xx.

- 4401: not authenticated (no session, no token, or a bad token);
- 4403: forbidden (the page's Origin is not this site or a trusted origin);
- 4404: not found: no such job, a job the user may not see, or no such path.
  The same code for "absent" and "not yours", so a socket is no existence oracle.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404

# Clients that cannot set headers (browsers) offer ["digits", "digits.token.<key>"];
# the server selects "digits" and never echoes the token.
SUBPROTOCOL = "digits"
TOKEN_SUBPROTOCOL_PREFIX = "digits.token."


def selected_subprotocol(scope) -> str | None:
    """The subprotocol to answer with: ``digits`` when the client offered it."""
    return SUBPROTOCOL if SUBPROTOCOL in scope.get("subprotocols", ()) else None


async def refuse(scope, receive, send, code: int) -> None:
    """Answer a websocket that no consumer runs for: accept, then close with ``code``."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept", "subprotocol": selected_subprotocol(scope)})
    await send({"type": "websocket.close", "code": code})


async def not_found(scope, receive, send) -> None:
    """The last websocket route: any other path under ``/ws/`` closes with 4404."""
    await refuse(scope, receive, send, CLOSE_NOT_FOUND)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_key(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, the default port filled in; None if malformed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


def _page_scheme(scope, headers: dict[bytes, bytes]) -> str:
    """The scheme of the page that may open this socket: https behind TLS, else http."""
    if scope.get("scheme") == "wss":
        return "https"
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name = proxy[0].removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
        value = headers.get(name, b"").decode("latin-1").split(",", 1)[0].strip()
        if value == proxy[1]:
            return "https"
    return "http"


def _trusted(origin: tuple[str, str, int]) -> bool:
    """``origin`` matches ``CSRF_TRUSTED_ORIGINS`` (``https://*.example.com`` included)."""
    scheme, host, port = origin
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in trusted
        key = _origin_key(trusted.replace("://*.", "://", 1) if wildcard else trusted)
        if key is None or (key[0], key[2]) != (scheme, port):
            continue
        if host == key[1] or (wildcard and host.endswith("." + key[1])):
            return True
    return False


def origin_allowed(scope) -> bool:
    """Is the socket opened by a page of this site (or of a trusted origin)?

    Scheme, host and port are compared, as browsers define an origin: the page's
    own origin is the socket's scheme (https behind TLS) with its ``Host`` header,
    that host being one of ``ALLOWED_HOSTS``. Other origins must be listed in
    ``CSRF_TRUSTED_ORIGINS``. A socket without an ``Origin`` header is refused.
    """
    headers = dict(scope.get("headers", ()))
    origin = _origin_key(headers.get(b"origin", b"").decode("latin-1"))
    if origin is None:
        return False
    host = headers.get(b"host", b"").decode("latin-1")
    same_origin = (
        host
        and validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS)
        and origin == _origin_key(f"{_page_scheme(scope, headers)}://{host}")
    )
    return bool(same_origin) or _trusted(origin)


class OriginValidator:
    """ASGI middleware: a socket from a foreign page is accepted and closed with 4403."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            await refuse(scope, receive, send, CLOSE_FORBIDDEN)
            return
        await self.app(scope, receive, send)
