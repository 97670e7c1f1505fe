from django.http import Http404, StreamingHttpResponse

from apps.core.storage import ArtifactNotFound, get_store


def artifact_response(key: str, filename: str) -> StreamingHttpResponse:
    """Stream an object-store key as a download through the web process.

    Streaming (rather than redirecting to a presigned URL) works whether or not
    the object store is reachable from users' browsers.
    """
    store = get_store()
    try:
        size = store.size(key)
    except ArtifactNotFound:
        raise Http404("The artifact is missing from the store.") from None
    response = StreamingHttpResponse(store.stream(key), content_type="application/octet-stream")
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
