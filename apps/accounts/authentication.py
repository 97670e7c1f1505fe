"""API token authentication for REST (``Authorization: Token <key>``) and websockets."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.accounts.models import ApiToken

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
        user = ApiToken.authenticate(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API token.")
        return user, key

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

    The token comes from the ``Authorization`` header (scripts) or the
    ``token`` query parameter (clients that cannot set headers).
    """

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            key = None
            for name, value in scope.get("headers", []):
                if name == b"authorization":
                    key = key_from_header(value)
            if key is None:
                key = (parse_qs(scope.get("query_string", b"").decode()).get("token") or [None])[0]
            if key:
                scope = {**scope, "user": await _user_for(key) or AnonymousUser()}
        return await super().__call__(scope, receive, send)


@database_sync_to_async
def _user_for(key: str):
    return ApiToken.authenticate(key)
