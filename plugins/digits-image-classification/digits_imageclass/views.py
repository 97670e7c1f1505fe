"""The plugin's own pages: a live preview of the resize options on one sample image."""

import io

import numpy as np
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_POST
from PIL import Image

from apps.core.plugins import EntryError
from digits_imageclass.forms import PreviewForm
from digits_imageclass.images import COLOR, load_image
from digits_imageclass.resize import resize_image

#: A sample image for the preview may be this large (bytes); Pillow's pixel limit applies too.
MAX_PREVIEW_BYTES = 16 * 2**20


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@login_required
@require_POST
def preview(request):
    """POST ``image`` + ``width``, ``height``, ``resize_mode``, ``image_type`` → PNG of the result."""
    form = PreviewForm(request.POST, request.FILES)
    if not form.is_valid():
        messages = [f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()]
        return _error("; ".join(messages))
    d = form.cleaned_data
    upload = d["image"]
    if upload.size > MAX_PREVIEW_BYTES:
        return _error(f"{upload.name} is larger than {MAX_PREVIEW_BYTES // 2**20} MB.", 413)
    try:
        image = load_image(upload, upload.name, d["image_type"] or COLOR)
    except EntryError as exc:
        return _error(str(exc))
    # A fixed seed: the preview changes only when the options do.
    result = resize_image(
        image, d["height"], d["width"], d["resize_mode"], np.random.default_rng(0)
    )
    out = io.BytesIO()
    Image.fromarray(result[:, :, 0] if result.shape[2] == 1 else result).save(out, format="PNG")
    response = HttpResponse(out.getvalue(), content_type="image/png")
    response["Cache-Control"] = "no-store"
    return response
