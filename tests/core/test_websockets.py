"""Websocket hardening: Origin by scheme, host and port; tokens only in a header or a
subprotocol; refusals accepted and closed with 4401 / 4403 / 4404; unknown paths 4404.

Who may open which job's socket is in tests/core/test_permissions.py.
"""

import logging

import pytest
from asgiref.sync import async_to_sync

from apps.accounts.models import ApiToken
from apps.jobs.models import Job
from tests.core.test_permissions import (  # noqa: F401
    WS_HOST,
    WS_ORIGIN,
    default_params,
    memory_layer,
    ws_connect,
)

connect = async_to_sync(ws_connect)


@pytest.fixture
def owned_job(transactional_db, memory_layer, people):  # noqa: F811
    job = Job.objects.create(
        owner=people.owner, name="ws", kind="worker.check", params=default_params()
    )
    _, key = ApiToken.issue(people.owner, "ws")
    return job, key


def token_header(key: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Token {key}".encode())


ORIGINS = {  # (Host, Origin) -> accepted?
    (b"localhost", b"http://localhost"): True,
    (b"localhost", b"http://localhost:80"): True,  # the default port, written out
    (b"localhost:8000", b"http://localhost:8000"): True,
    (b"127.0.0.1:8000", b"http://127.0.0.1:8000"): True,
    (b"localhost", b"https://localhost"): False,  # another scheme
    (b"localhost", b"http://localhost:8000"): False,  # another port
    (b"localhost:8000", b"http://localhost:9000"): False,
    (b"localhost:8000", b"http://127.0.0.1:8000"): False,  # another host, though allowed
    (b"localhost", b"http://evil.example"): False,
    (b"localhost", b"https://localhost.evil.example"): False,
    (b"evil.example", b"http://evil.example"): False,  # same origin, host not allowed
    (b"localhost", b"null"): False,
    (b"localhost", b"not a url"): False,
    (b"localhost", None): False,  # no Origin header at all
}


def test_origin_is_compared_on_scheme_host_and_port(owned_job):
    """A page on another site must not open sockets with the user's cookies or token."""
    job, key = owned_job
    codes = {}
    for host, origin in ORIGINS:
        headers = [(b"host", host), token_header(key)]
        if origin is not None:
            headers.append((b"origin", origin))
        codes[(host, origin)] = connect(f"/ws/jobs/{job.pk}/", headers)[0]

    assert {case: code == "accept" for case, code in codes.items()} == ORIGINS
    # Accepted, then closed as forbidden: not the consumer's 4401/4404.
    assert {code for code in codes.values() if code != "accept"} == {4403}


def test_trusted_origins_match_exactly_or_by_subdomain_wildcard(owned_job, settings):
    job, key = owned_job
    settings.CSRF_TRUSTED_ORIGINS = ["https://digits.example.com", "https://*.corp.example"]
    cases = {
        b"https://digits.example.com": "accept",
        b"https://digits.example.com:443": "accept",
        b"http://digits.example.com": 4403,
        b"https://digits.example.com:8443": 4403,
        b"https://lab.corp.example": "accept",
        b"http://lab.corp.example": 4403,
        b"https://corp.example.evil": 4403,
    }
    got = {
        origin: connect(f"/ws/jobs/{job.pk}/", [WS_HOST, (b"origin", origin), token_header(key)])[0]
        for origin in cases
    }
    assert got == cases


def test_behind_tls_the_page_origin_is_https(owned_job, settings):
    """TLS ends at the ingress: X-Forwarded-Proto says the page was https."""
    job, key = owned_job
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proto = (b"x-forwarded-proto", b"https")
    path = f"/ws/jobs/{job.pk}/"

    assert connect(path, [WS_HOST, proto, (b"origin", b"https://localhost"), token_header(key)])[
        0
    ] == ("accept")
    assert connect(path, [WS_HOST, proto, WS_ORIGIN, token_header(key)])[0] == 4403


def test_token_in_a_subprotocol_and_never_in_the_query_string(owned_job):
    job, key = owned_job
    path = f"/ws/jobs/{job.pk}/"
    browser = [WS_HOST, WS_ORIGIN]

    code, hello = connect(path, browser, subprotocols=["digits", f"digits.token.{key}"])
    assert code == "accept" and hello["type"] == "hello"
    assert connect(path, browser, subprotocols=["digits", "digits.token.not-a-key"])[0] == 4401
    assert connect(f"{path}?token={key}", browser)[0] == 4401


def test_the_server_selects_the_digits_subprotocol_never_the_token(owned_job):
    from channels.testing import WebsocketCommunicator

    from digits_site.asgi import application

    job, key = owned_job

    async def selected():
        socket = WebsocketCommunicator(
            application, f"/ws/jobs/{job.pk}/", headers=[WS_HOST, WS_ORIGIN],
            subprotocols=["digits", f"digits.token.{key}"],
        )  # fmt: skip
        connected, subprotocol = await socket.connect(timeout=5)
        await socket.disconnect()
        return connected, subprotocol

    assert async_to_sync(selected)() == (True, "digits")


def test_tokens_are_not_logged(owned_job, caplog):
    job, key = owned_job
    with caplog.at_level(logging.DEBUG):
        connect(f"/ws/jobs/{job.pk}/", [WS_HOST, WS_ORIGIN, token_header(key)])
        connect(f"/ws/jobs/{job.pk}/", [WS_HOST, WS_ORIGIN], subprotocols=[f"digits.token.{key}"])
    assert key not in caplog.text


@pytest.mark.parametrize("path", ["/ws/jobs/abc/", "/ws/jobs/1/extra/", "/ws/nope/", "/ws/"])
def test_unknown_paths_close_with_4404(owned_job, path):
    _, key = owned_job
    assert connect(path, [WS_HOST, WS_ORIGIN, token_header(key)])[0] == 4404


def test_pages_stop_retrying_on_44xx_close_codes():
    """The reconnect loop in static/digits/jobs.js gives up on every refusal code."""
    from tests.conftest import ROOT

    script = (ROOT / "static" / "digits" / "jobs.js").read_text()
    assert "ev.code >= 4400 && ev.code < 4500" in script


def test_read_only_and_expiring_tokens(owned_job):
    """A websocket only listens: a read-only token follows a job; an expired one does not."""
    from datetime import timedelta

    from django.utils import timezone

    job, _ = owned_job
    path = f"/ws/jobs/{job.pk}/"
    _, read_key = ApiToken.issue(job.owner, "read", scope="read")
    _, old_key = ApiToken.issue(job.owner, "old", timezone.now() - timedelta(seconds=1))

    assert connect(path, [WS_HOST, WS_ORIGIN, token_header(read_key)])[0] == "accept"
    assert connect(path, [WS_HOST, WS_ORIGIN, token_header(old_key)])[0] == 4401
