from django.conf import settings
from django.http import HttpResponse, JsonResponse


def _size(n: int) -> str:
    """``n`` bytes for people: "2048 MB", "1.5 MB", "500 KB", "900 bytes"."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


class RequestSizeLimitMiddleware:
    """Refuse oversized request bodies up front with 413 and a message saying the limit.

    File uploads (multipart) may be up to ``DIGITS_MAX_UPLOAD_MB``; other bodies
    (JSON, forms) up to ``DATA_UPLOAD_MAX_MEMORY_SIZE``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        is_upload = request.META.get("CONTENT_TYPE", "").startswith("multipart/")
        limit = settings.MAX_UPLOAD_BYTES if is_upload else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length > limit:
            what = "Upload" if is_upload else "Request body"
            message = f"{what} too large: {_size(length)}; the limit is {_size(limit)}."
            if request.path.startswith("/api/") or "json" in request.META.get("HTTP_ACCEPT", ""):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)
