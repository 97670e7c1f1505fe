"""The platform as a user of the SDK and CLI meets it: the embedded default (``manage.py
serve``: SQLite, local artifact store, in-process worker) in a subprocess, with a user
provisioned by ``manage.py create_user`` — started once for the module."""

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, free_port

PASSWORD = "kirsche-Tal-7"


def manage(*args, env, stdin=None):
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin,
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


class Server:
    def __init__(self, url, env, log_path):
        self.url = url
        self.env = env
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("embedded")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_")}
    env.pop("DATABASE_URL", None)
    env.update(DIGITS_DATA_DIR=str(tmp / "data"), PYTHONUNBUFFERED="1")
    manage("migrate", "--noinput", env=env)
    for name in ("ursula", "sam"):
        manage("create_user", name, "--password-stdin", env=env, stdin=PASSWORD + "\n")
    port = free_port()
    log_path = tmp / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(url + "/healthz/ready", timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                log = log_path.read_text()[-3000:]
                raise AssertionError("server did not start:\n" + log) from None
            time.sleep(0.3)
    yield Server(url, env, log_path)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    """A private config file for ``digits login`` (never the developer's own)."""
    path = tmp_path / "digits-config.json"
    monkeypatch.setenv("DIGITS_CONFIG", str(path))
    monkeypatch.delenv("DIGITS_URL", raising=False)
    monkeypatch.delenv("DIGITS_TOKEN", raising=False)
    return path
