"""Platform processes started with a chosen set of plugins, and HTTP against them.

Plugins are discovered when settings load, so a different plugin set needs a new
process; the test process itself keeps the plugins it started with.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from tests.conftest import ROOT, free_port, process_env


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``manage.py <args>`` in a new process with ``env`` added; output in ``.stdout``."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=process_env(**env),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def start_web(start_process, **env: str) -> str:
    """Start uvicorn serving the platform with ``env`` added; return its base URL."""
    port = free_port()
    web = start_process(
        "-m", "uvicorn", "digits_site.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--no-access-log", env=env, name="web",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz/live", timeout=2)
            return url
        except OSError:
            if time.monotonic() > deadline or web.proc.poll() is not None:
                raise AssertionError("web server did not start:\n" + web.log()[-3000:]) from None
            time.sleep(0.05)


@dataclass
class Reply:
    status: int
    text: str

    def json(self):
        return json.loads(self.text)


def fetch(url: str, data=None, headers: dict[str, str] | None = None) -> Reply:
    """GET ``url``, or POST ``data`` as JSON; the reply whatever its status."""
    headers = dict(headers or {})
    if data is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(data).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, response.read().decode())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read().decode(errors="replace"))


class Browser:
    """HTTP to a live server as one user: a session cookie for pages, a token for the API."""

    def __init__(self, base_url: str, user):
        from django.test import Client

        from apps.accounts.models import ApiToken

        client = Client()
        client.force_login(user)  # a session row in the database the server shares
        _, token = ApiToken.issue(user, "tests")
        self.base_url = base_url
        # Pages authenticate by the session, the API by the token (which spares it CSRF).
        self.headers = {
            "Cookie": f"sessionid={client.cookies['sessionid'].value}",
            "Authorization": f"Token {token}",
        }

    def get(self, path: str) -> Reply:
        return fetch(self.base_url + path, headers=self.headers)

    def post_json(self, path: str, data) -> Reply:
        return fetch(self.base_url + path, data, headers=self.headers)


def plugin_rows(page: str) -> dict[str, str]:
    """``{plugin name: text of its row}`` of the /plugins/ table, tags stripped."""
    rows = re.findall(r'<tr data-plugin="([^"]+)">(.*?)</tr>', page, re.S)
    return {
        name: html.unescape(" ".join(re.sub(r"<[^>]+>", " ", row).split())) for name, row in rows
    }
