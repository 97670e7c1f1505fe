"""Request bodies: the size limit and upload authentication apply before the body is read.

The ASGI application is driven in-process with a ``receive`` that counts what was
read; one test sends a raw request to the real server (uvicorn).
"""

import asyncio
import json
import socket
from urllib.parse import urlsplit

import pytest
from asgiref.sync import async_to_sync

from apps.accounts.models import ApiToken

MB = 2**20
MULTIPART = "multipart/form-data; boundary=xyz"


async def _call(path, headers, chunks, method="POST"):
    """Run the real ASGI application; (status, headers, body, http.request messages read)."""
    from digits_site.asgi import application

    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks or [b""])
    ]
    read = 0
    sent = []

    async def receive():
        nonlocal read
        if pending:
            read += 1
            return pending.pop(0)
        await asyncio.Future()  # the client waits for the answer; never disconnects

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"testserver"), *[(k.encode(), v.encode()) for k, v in headers]],
    }  # fmt: skip
    await asyncio.wait_for(application(scope, receive, send), 30)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body, read


call = async_to_sync(_call)


@pytest.fixture
def token(transactional_db, people):
    return ApiToken.issue(people.owner, "upload")[1]


@pytest.fixture
def small_limits(settings):
    settings.MAX_UPLOAD_BYTES = 2 * MB
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = MB


def auth(key):
    return ("authorization", f"Token {key}")


def test_a_declared_oversized_upload_is_refused_unread(token, small_limits):
    headers = [auth(token), ("content-type", MULTIPART), ("content-length", str(50 * 2**30))]
    status, reply_headers, body, read = call("/api/v1/datasets/", headers, [b"x" * MB])

    assert (status, read) == (413, 0)
    assert json.loads(body) == {"detail": "Upload too large: 50 GB; the limit is 2 MB."}
    assert reply_headers[b"connection"] == b"close"


def test_an_oversized_form_post_to_a_page_gets_plain_text(token, small_limits):
    headers = [("content-type", "application/x-www-form-urlencoded"), ("content-length", "3000000")]
    status, reply_headers, body, read = call("/datasets/new/", headers, [b"a=1"])

    assert (status, read) == (413, 0)
    assert reply_headers[b"content-type"].startswith(b"text/plain")
    assert body == b"Request body too large: 2.9 MB; the limit is 1 MB."


def test_a_chunked_upload_is_cut_off_once_past_the_limit(token, small_limits):
    chunks = [b"x" * MB] * 20  # no Content-Length: counted as it arrives
    status, _, body, read = call(
        "/api/v1/datasets/", [auth(token), ("content-type", MULTIPART)], chunks
    )

    assert status == 413
    assert read == 3  # 3 MB read: over 2 MB; the other 17 MB never were
    assert json.loads(body)["detail"] == "Upload too large: more than 2 MB; the limit is 2 MB."


def test_a_lying_content_length_is_cut_off_too(token, small_limits):
    headers = [auth(token), ("content-type", MULTIPART), ("content-length", "100")]
    status, _, _, read = call("/api/v1/datasets/", headers, [b"x" * MB] * 20)
    assert (status, read) == (413, 3)


@pytest.mark.parametrize(
    "path, credentials, status",
    [
        ("/api/v1/datasets/", [], 401),
        ("/api/v1/datasets/", [("authorization", "Token not-a-real-key")], 401),
        ("/datasets/new/image-classification/", [], 403),
        ("/datasets/new/image-classification/", [("cookie", "sessionid=made-up")], 403),
    ],
)
def test_anonymous_uploads_are_refused_before_the_body(transactional_db, path, credentials, status):
    headers = [*credentials, ("content-type", MULTIPART), ("content-length", str(MB))]
    got, reply_headers, body, read = call(path, headers, [b"x" * MB])

    assert (got, read) == (status, 0)
    if status == 401:
        assert reply_headers[b"www-authenticate"] == b"Token"
        assert json.loads(body)["detail"] == "Authentication credentials were not provided."
    else:
        assert body == b"Log in to upload files."


def test_uploads_of_logged_in_users_reach_django(transactional_db, people, client, token):
    """A token or a session cookie lets the body through (here: to a GET-only endpoint)."""
    client.force_login(people.owner)
    session = client.cookies["sessionid"].value
    answers = {}
    for credentials in (auth(token), ("cookie", f"sessionid={session}")):
        headers = [credentials, ("content-type", MULTIPART), ("content-length", "11")]
        status, _, body, read = call("/api/v1/me/", headers, [b"hello", b"world!"])
        assert read == 2  # Django read the body and answered
        answers[credentials[0]] = (status, json.loads(body)["detail"][:11])
    # DRF's answers: wrong method (token); no CSRF token (session, checked first).
    assert answers == {"authorization": (405, 'Method "POS'), "cookie": (403, "CSRF Failed")}


def test_small_bodies_pass_untouched(transactional_db):
    headers = [("content-type", "application/json"), ("content-length", "2")]
    status, _, _, read = call("/api/v1/me/", headers, [b"{}"])
    assert (status, read) == (401, 1)  # DRF's own answer, after reading the body


def _read_response(conn: socket.socket) -> str:
    """The whole HTTP response: headers and their Content-Length of body (TCP may split them)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data.decode()
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
         if line.lower().startswith(b"content-length:")),
        0,
    )  # fmt: skip
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def test_the_real_server_refuses_before_the_body_is_sent(live_server_url, settings):
    """uvicorn: headers alone, declaring 50 GB, get the 413 (no byte of body sent)."""
    url = urlsplit(live_server_url)
    request = (
        "POST /api/v1/datasets/ HTTP/1.1\r\n"
        f"Host: {url.hostname}:{url.port}\r\n"
        f"Content-Type: {MULTIPART}\r\n"
        f"Content-Length: {50 * 2**30}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(request.encode())
        reply = _read_response(conn)

    assert reply.startswith("HTTP/1.1 413"), reply
    assert "Upload too large: 50 GB; the limit is 2 GB." in reply
