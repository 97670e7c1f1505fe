"""A refused submission from a page's button (clone, resume): a message, not a server error.

Pages with a form show the refusal on the form (``apps.usage.forms.add_refusal``); the
API answers it itself (429 or 400). Any other page that submits a job gets here.
"""

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme

from apps.usage.forms import REFUSALS


class RefusalMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, REFUSALS) or request.path.startswith("/api/"):
            return None
        messages.error(request, exception.message)
        back = request.META.get("HTTP_REFERER", "")
        if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
            back = "/"
        return redirect(back)
