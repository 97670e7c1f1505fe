import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.accounts.authentication import WebsocketTokenAuthMiddleware  # noqa: E402
from apps.core.body_limits import RequestBodyGuard  # noqa: E402
from apps.core.websockets import OriginValidator  # noqa: E402
from digits_site.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Body limits and upload authentication before Django reads the body.
        "http": RequestBodyGuard(django_asgi_app),
        # A foreign Origin closes with 4403 before authentication; the consumers
        # close with 4401 / 4404 (apps.core.websockets).
        "websocket": OriginValidator(
            AuthMiddlewareStack(WebsocketTokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
