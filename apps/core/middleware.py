from django.http import HttpResponse, JsonResponse

from apps.core.body_limits import body_limit, too_large_message, wants_json
from apps.core.storage import StoreUnavailable


class RequestSizeLimitMiddleware:
    """Refuse oversized request bodies up front with 413 and a message saying the limit.

    File uploads (multipart) may be up to ``DIGITS_MAX_UPLOAD_MB``; other bodies
    (JSON, forms) up to ``DATA_UPLOAD_MAX_MEMORY_SIZE``. Under the ASGI server
    ``apps.core.body_limits.RequestBodyGuard`` has refused them before the body
    was read; this covers the other entry points (test client, WSGI).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        content_type = request.META.get("CONTENT_TYPE", "")
        if length > body_limit(content_type):
            message = too_large_message(content_type, length)
            if wants_json(request.path, request.META.get("HTTP_ACCEPT", "")):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)


STORE_UNAVAILABLE_MESSAGE = (
    "The file store is unreachable right now, so nothing was saved. Try again in a minute."
)


class StoreUnavailableMiddleware:
    """Answer 503 with a clear message when the artifact store stays unreachable through its
    retries (``apps.core.storage.retry``), instead of a 500: the request may be repeated."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, StoreUnavailable):
            return None
        headers = {"Retry-After": "30"}
        if wants_json(request.path, request.META.get("HTTP_ACCEPT", "")):
            return JsonResponse({"detail": STORE_UNAVAILABLE_MESSAGE}, status=503, headers=headers)
        return HttpResponse(
            STORE_UNAVAILABLE_MESSAGE, status=503, content_type="text/plain", headers=headers
        )
