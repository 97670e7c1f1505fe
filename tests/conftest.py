"""Fixtures shared by the whole suite.

The suite runs against real services (see scripts/with_test_services.py):
PostgreSQL, a Redis or RabbitMQ broker, channels-redis and an S3 server.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


# --- people ------------------------------------------------------------------------
@dataclass
class People:
    owner: object
    team_viewer: object
    team_member: object
    team_admin: object
    other: object
    staff: object
    team: object


@pytest.fixture
def people(db, django_user_model):
    """A team with a viewer, a member and an admin; the owner is a member too."""
    from apps.accounts.models import Membership, Team

    def user(name, **extra):
        return django_user_model.objects.create_user(name, password="pw-" + name, **extra)

    team = Team.objects.create(name="Vision", slug="vision")
    p = People(
        owner=user("olivia"),
        team_viewer=user("victor"),
        team_member=user("mia"),
        team_admin=user("adam"),
        other=user("oscar"),
        staff=user("stella", is_staff=True),
        team=team,
    )
    for person, role in [
        (p.owner, "member"), (p.team_viewer, "viewer"), (p.team_member, "member"),
        (p.team_admin, "admin"),
    ]:  # fmt: skip
        Membership.objects.create(team=team, user=person, role=role)
    return p


def grant_custom_code(user):
    """Give ``user`` the permission to run custom network code and uploaded models."""
    from django.contrib.auth.models import Permission

    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="mlmodels", codename="run_custom_code")
    )
    for cache in ("_perm_cache", "_user_perm_cache"):  # has_perm caches on the object
        user.__dict__.pop(cache, None)
    return user


@pytest.fixture
def api_client():
    """An API client; ``api_client.as_user(user)`` authenticates with a real API token."""
    from rest_framework.test import APIClient

    from apps.accounts.models import ApiToken

    client = APIClient()

    def as_user(user):
        _, key = ApiToken.issue(user, "tests")
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    client.as_user = as_user
    return client


@pytest.fixture(scope="session")
def built_datasets() -> dict:
    """Datasets built once per test process and shared read-only (``tests/builds.py``)."""
    return {}


# --- processes -------------------------------------------------------------------------
def database_url() -> str:
    """The URL of the database the tests use (pytest-django's test database)."""
    s = connection.settings_dict
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    user = s.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port}/{s['NAME']}"


def process_env(**overrides) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1"}
    # The processes a test starts may cache bytecode (``__pycache__``, ignored by git):
    # without it each one compiles the platform's 200 modules again, a tenth of a second
    # or more at every start. Job processes still never write it (apps.jobs.sandbox).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A platform process (worker, reaper, web) started for a test."""

    def __init__(self, args, env, log_path: Path, pass_fds=(), zygote=None):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115  closed in stop()
        if zygote is not None and zygote.serves(args, env):
            self.proc = zygote.start(args, env, log_path, pass_fds)
            return
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=self._log,
            stderr=subprocess.STDOUT, pass_fds=pass_fds,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"process exited ({self.proc.returncode}):\n{self.log()[-3000:]}"
                )
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen in time:\n{self.log()[-3000:]}")

    def job_processes(self) -> list:
        """The job processes this worker process started that still run (its log names
        each one: forked by a fork server, they need not be its children)."""
        import re

        import psutil

        found = []
        for pid in re.findall(r"job \d+: job process (\d+) started", self.log()):
            try:
                proc = psutil.Process(int(pid))
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except psutil.NoSuchProcess:
                pass
        return found

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def job_fork_server():
    """The test process's job fork server (``apps.jobs.launcher``, started with the first
    job): it has imported TensorFlow once, and the job processes of every test are forked
    from it — those of the test process and those of the workers the tests start, each of
    which gets a connection of its own (``fd:N``). Returned once it has preloaded: a first
    job would otherwise wait for the preload after its worker claimed it, and run seconds
    shorter than its job's running time says (what usage accounting is tested against)."""
    from apps.jobs import launcher

    server = launcher.server()
    if server is not None:
        server.wait_ready()
    return server


_zygote = None


@pytest.fixture(scope="session")
def zygote(tmp_path_factory):
    """The test process's zygote (``tests/zygote.py``): the platform processes the tests
    start are forked from it, their libraries imported once. One per test process, also
    where a plugin's conftest imports this fixture."""
    global _zygote
    from tests.zygote import Zygote

    if _zygote is None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        _zygote = Zygote(env, tmp_path_factory.mktemp("zygote"))
    yield _zygote
    _zygote.stop()


@pytest.fixture
def start_process(transactional_db, tmp_path, job_fork_server, zygote):
    """Factory: ``start_process("manage.py", "jobworker", ..., env={...})``; stopped after the test.
    Its job processes come from the test process's fork server unless ``env`` says how; it is
    forked from the zygote where a new interpreter would run it the same."""
    from apps.jobs import launcher

    started = []

    def start(*args, env=None, name=None):
        log_path = tmp_path / f"{name or args[1]}-{len(started)}.log"
        env = dict(env or {})
        with contextlib.ExitStack() as stack:
            fds = ()
            if job_fork_server is not None and "DIGITS_JOB_LAUNCHER" not in env:
                connection = stack.enter_context(launcher.adopt(job_fork_server))
                fds = (connection.fileno(),)
                env["DIGITS_JOB_LAUNCHER"] = f"fd:{fds[0]}"
            proc = Process(args, process_env(**env), log_path, pass_fds=fds, zygote=zygote)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def start_worker(start_process):
    """Factory for a job worker process: ``start_worker(queues=("default",), broker_url=None)``."""

    def start(queues=("default",), threads=1, broker_url=None, **env):
        if broker_url:
            env["DIGITS_BROKER_URL"] = broker_url
        # --skip-checks: Django's system checks (which import every URL conf and view)
        # are the same for every worker of a run; `manage.py check` has tests of its own.
        worker = start_process(
            "manage.py", "jobworker", "--queues", *queues, "--threads", str(threads),
            "--skip-checks", env=env, name="worker-" + "-".join(queues),
        )  # fmt: skip
        worker.wait_for_log("Worker consuming")
        return worker

    return start


def start_web(start_process, port: int | None = None):
    """A uvicorn web process (HTTP and websockets); returns (process, its base URL) once it
    answers. ``port``: the same one again, to restart a web process in place."""
    import urllib.request

    port = port or free_port()
    web = start_process(
        "-m", "uvicorn", "digits_site.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--no-access-log", name="web",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/healthz/live", timeout=2)
            return web, url
        except OSError:
            if time.monotonic() > deadline or web.proc.poll() is not None:
                raise AssertionError("web server did not start:\n" + web.log()[-3000:]) from None
            time.sleep(0.05)


@pytest.fixture
def live_server_url(start_process):
    """The platform served by uvicorn (HTTP + websockets) in a separate process."""
    return start_web(start_process)[1]


def wait_until(predicate, timeout: float = 30, interval: float = 0.1, message: str = ""):
    """Poll ``predicate`` until it returns a truthy value; return it or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        time.sleep(interval)


# --- warm inference ---------------------------------------------------------------------
@pytest.fixture
def inference_server(settings, transactional_db, job_fork_server):
    """A real inference server (its model processes sandboxed as in production) that the
    test's web requests reach through ``DIGITS_INFERENCE_URL``. It runs in the test process,
    so its model processes are forked from the test process's fork server, as jobs are."""
    import shutil
    import tempfile

    from apps.inference.server import InferenceServer

    folder = tempfile.mkdtemp(prefix="inf-", dir="/tmp")  # a Unix socket path is short
    settings.DIGITS_INFERENCE_URL = f"unix://{folder}/inference.sock"
    settings.DIGITS_INFERENCE_SWEEP_SECONDS = 3600  # sweeps are called by the tests
    server = InferenceServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)
