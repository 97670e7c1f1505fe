"""Production's static files (DIGITS_STATIC_MANIFEST, as the images and ``make run`` set
it): pages link hashed names, served compressed and cached for ten years."""

from __future__ import annotations

import re
import urllib.request

import pytest

from tests.conftest import start_web

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def fetch(url: str, **headers):
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=20) as reply:
        return reply.status, reply.headers, reply.read()  # names case-insensitive


def test_hashed_static_files_are_compressed_and_cached_long(start_process, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITS_STATIC_MANIFEST", "1")
    monkeypatch.setenv("DIGITS_STATIC_ROOT", str(tmp_path / "static"))
    collect = start_process("manage.py", "collectstatic", "--noinput", name="collectstatic")
    assert collect.proc.wait(timeout=120) == 0, collect.log()[-3000:]
    _, url = start_web(start_process)

    _, _, page = fetch(url + "/accounts/login/")
    css = re.search(rb'href="(/static/digits/digits\.[0-9a-f]{12}\.css)"', page)
    assert css, page[:2000]  # the page links the hashed name
    status, headers, body = fetch(url + css.group(1).decode(), **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip", dict(headers)
    assert "immutable" in headers["Cache-Control"]
    assert int(re.search(r"max-age=(\d+)", headers["Cache-Control"]).group(1)) >= 365 * 86400
    plain = (tmp_path / "static" / "digits" / "digits.css").stat().st_size
    assert len(body) < plain / 2  # sent compressed
