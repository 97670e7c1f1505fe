"""Settings from the environment: production hardening and the zero-configuration default."""

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from apps.core.env import envbool, envint, envsecret
from tests.conftest import ROOT, free_port


def manage(*args, env, timeout=240):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


# --- check --deploy ------------------------------------------------------------------------
@pytest.fixture
def production_env(tmp_path):
    """What the Helm chart gives the web pods (services from the test launcher)."""
    key_file = tmp_path / "secret-key"
    key_file.write_text(secrets.token_urlsafe(64) + "\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DIGITS_DEBUG", "DIGITS_SECRET_KEY", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DIGITS_SECRET_KEY_FILE=str(key_file),  # mounted from a Kubernetes secret
        DIGITS_HTTPS="1",
        DIGITS_ALLOWED_HOSTS="digits.example.com",
        DIGITS_CSRF_TRUSTED_ORIGINS="https://digits.example.com",
        DIGITS_DATA_DIR=str(tmp_path / "data"),
    )
    for name in (
        "DATABASE_URL",
        "DIGITS_BROKER_URL",
        "DIGITS_CHANNEL_LAYER_URL",
        "DIGITS_S3_ENDPOINT",
    ):
        assert env.get(name), f"{name} should come from scripts/with_test_services.py"
    return env


def test_check_deploy_is_clean_in_production(production_env):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_check_deploy_warns_without_https(production_env):
    """The clean result above means something: the same check catches a plain-HTTP setup."""
    result = manage("check", "--deploy", env={**production_env, "DIGITS_HTTPS": "0"})

    assert "security.W004" in result.stderr  # HSTS
    assert "security.W008" in result.stderr  # SSL redirect
    assert "security.W012" in result.stderr  # session cookie not secure


def test_bad_boolean_stops_start_up_naming_the_variable(production_env):
    result = manage("check", env={**production_env, "DIGITS_HTTPS": "maybe"})

    assert result.returncode != 0
    assert "DIGITS_HTTPS must be a boolean (true/false), got 'maybe'" in result.stderr


# --- env helpers -----------------------------------------------------------------------------
def test_envsecret_reads_the_file_named_by_name_file(monkeypatch, tmp_path):
    secret = tmp_path / "db-url"
    secret.write_text("postgres://u:p@db/digits\n")
    monkeypatch.setenv("DIGITS_TEST_SECRET", "from-the-variable")
    assert envsecret("DIGITS_TEST_SECRET") == "from-the-variable"

    monkeypatch.setenv("DIGITS_TEST_SECRET_FILE", str(secret))

    assert envsecret("DIGITS_TEST_SECRET") == "postgres://u:p@db/digits"  # stripped, file wins


def test_envsecret_default(monkeypatch):
    monkeypatch.delenv("DIGITS_TEST_SECRET", raising=False)
    monkeypatch.delenv("DIGITS_TEST_SECRET_FILE", raising=False)
    assert envsecret("DIGITS_TEST_SECRET", "fallback") == "fallback"


def test_envsecret_missing_file_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITS_TEST_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError):
        envsecret("DIGITS_TEST_SECRET")


@pytest.mark.parametrize(
    "raw, value",
    [("1", True), ("true", True), ("Yes", True), (" on ", True),
     ("0", False), ("false", False), ("NO", False), ("off", False), ("", False)],
)  # fmt: skip
def test_envbool_values(monkeypatch, raw, value):
    monkeypatch.setenv("DIGITS_TEST_FLAG", raw)
    assert envbool("DIGITS_TEST_FLAG", default=not value) is value


@pytest.mark.parametrize("raw", ["maybe", "2", "tru", "y e s"])
def test_envbool_rejects_garbage_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("DIGITS_TEST_FLAG", raw)
    with pytest.raises(
        ValueError, match=rf"^DIGITS_TEST_FLAG must be a boolean \(true/false\), got '{raw}'$"
    ):
        envbool("DIGITS_TEST_FLAG")


def test_envbool_and_envint_defaults(monkeypatch):
    monkeypatch.delenv("DIGITS_TEST_FLAG", raising=False)
    assert envbool("DIGITS_TEST_FLAG", True) is True
    assert envint("DIGITS_TEST_FLAG", 7) == 7


def test_envint_rejects_garbage_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DIGITS_TEST_NUMBER", "ten")
    with pytest.raises(ValueError, match="^DIGITS_TEST_NUMBER must be an integer, got 'ten'$"):
        envint("DIGITS_TEST_NUMBER", 1)


# --- the embedded default --------------------------------------------------------------------
def http(url, data=None, token=None, timeout=10):
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    if data is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(data).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(predicate, timeout, what, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} not within {timeout} s; server log:\n{log()[-4000:]}")


def follow_live(base: str, key: str, job_id: int) -> list[dict]:
    """The events a websocket on ``job_id`` receives live, until a final status."""
    from websockets.sync.client import connect

    got: list[dict] = []
    with connect(
        "ws" + base[4:] + f"/ws/jobs/{job_id}/",
        additional_headers={"Authorization": f"Token {key}"},
        origin=base,
        open_timeout=30,
    ) as ws:
        hello = json.loads(ws.recv(timeout=30))
        assert hello["type"] == "hello", hello
        while not got or got[-1]["type"] != "status" or got[-1]["data"]["status"] != "done":
            message = json.loads(ws.recv(timeout=60))
            assert message["type"] == "events", message
            assert message["events"][0]["seq"] > hello["last_seq"]
            got.extend(message["events"])
    return got


@pytest.mark.slow
def test_embedded_default_runs_with_nothing_configured(tmp_path):
    """No database, broker, channel layer or S3 configured: one command runs everything."""
    data_dir = tmp_path / "data"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("DIGITS_") and k != "DATABASE_URL"
    }
    env.update(DIGITS_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")

    migrated = manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert (data_dir / "db.sqlite3").is_file()

    admin = manage("ensure_admin", env=env)
    assert admin.returncode == 0, admin.stderr
    said = re.search(r"Log in at (\S+) as “admin” with password “([^”]+)”", admin.stdout)
    assert said, admin.stdout
    password = said.group(2)
    assert not (data_dir / "initial_admin_password").exists()  # printed once, kept nowhere
    again = manage("ensure_admin", env=env)  # idempotent; the password is not shown again
    assert "Created" not in again.stdout and password not in again.stdout

    token = manage(
        "shell", "-c",
        "from django.contrib.auth import get_user_model\n"
        "from apps.accounts.models import ApiToken\n"
        "user = get_user_model().objects.get(username='admin')\n"
        f"assert user.check_password({password!r}) and user.is_superuser\n"
        "print(ApiToken.issue(user, 'embedded test')[1])",
        env=env,
    )  # fmt: skip
    assert token.returncode == 0, token.stderr
    key = token.stdout.strip().splitlines()[-1]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server_log = lambda: log_path.read_text(errors="replace")  # noqa: E731
    try:

        def ready():
            assert server.poll() is None, "server exited:\n" + server_log()[-4000:]
            try:
                return http(base + "/healthz/ready", timeout=5)
            except OSError:
                return None

        status, body = wait_for(ready, 90, "readiness", server_log)
        assert status == 200, body
        assert body["checks"] == {
            "database": "ok", "broker": "ok", "object_store": "ok", "channel_layer": "ok",
        }  # fmt: skip
        assert "Embedded worker and reaper started" in server_log()

        params = {"steps": 4, "step_seconds": 0.5, "matrix_size": 8}
        status, job = http(base + "/api/v1/jobs/", {"kind": "worker.check", "params": params}, key)
        assert status == 201, job
        # Live updates without Redis: the in-process fan-out reaches the job's socket.
        live = follow_live(base, key, job["id"])
        assert live[-1]["type"] == "status" and live[-1]["data"]["status"] == "done", live

        def finished():
            status, current = http(f"{base}/api/v1/jobs/{job['id']}/", token=key)
            assert status == 200, current
            return current if current["status"] in ("done", "error", "aborted") else None

        final = wait_for(finished, 180, "the job finishing", server_log)
        assert final["status"] == "done", final
        assert final["progress"] == 1.0 and final["result"]["steps"] == 4
        assert [a["name"] for a in final["artifacts"]] == ["report.json"]
        assert (data_dir / "artifacts" / "jobs" / str(job["id"]) / "report.json").is_file()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
