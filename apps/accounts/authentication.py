"""API token authentication for REST (``Authorization: Token <key>``) and websockets."""

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from apps.accounts.models import ApiToken
from apps.core.websockets import TOKEN_SUBPROTOCOL_PREFIX

KEYWORDS = (b"token", b"bearer")


def key_from_header(value: bytes) -> str | None:
    parts = value.split()
    if len(parts) == 2 and parts[0].lower() in KEYWORDS:
        return parts[1].decode("latin-1")
    return None


class TokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        key = key_from_header(header)
        if key is None:
            return None
        token = ApiToken.authenticate(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API token.")
        # Checked here rather than in a permission class: every view authenticates, while
        # a view may replace the default permission classes.
        if token.read_only and request.method not in permissions.SAFE_METHODS:
            raise exceptions.PermissionDenied(
                f"This API token is read-only: it may not make {request.method} requests. "
                "Use a token with the full scope."
            )
        return token.user, token

    def authenticate_header(self, request):
        return "Token"


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes ``TokenAuthentication`` in the OpenAPI schema."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An API token from /accounts/ or /api/v1/tokens/: `Token <key>`.",
        }


class WebsocketTokenAuthMiddleware(BaseMiddleware):
    """Authenticate a websocket by API token when the session did not.

    The token comes from the ``Authorization`` header (scripts) or, for clients
    that cannot set headers (browsers), from the offered subprotocols
    ``["digits", "digits.token.<key>"]``. Never from the query string: URLs end
    up in access logs. A bad token leaves the socket anonymous (closed 4401).
    """

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            key = _websocket_key(scope)
            if key:
                scope = {**scope, "user": await _user_for(key) or AnonymousUser()}
        return await super().__call__(scope, receive, send)


def _websocket_key(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return key_from_header(value)
    for protocol in scope.get("subprotocols", ()):
        if protocol.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return protocol.removeprefix(TOKEN_SUBPROTOCOL_PREFIX)
    return None


@database_sync_to_async
def _user_for(key: str):
    # Any scope: a websocket only follows what happens (a read-only token's use).
    token = ApiToken.authenticate(key)
    return token.user if token else None
