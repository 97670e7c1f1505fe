"""A process that has imported the platform's libraries once and forks the platform
processes the tests start (workers, web servers, ``manage.py`` commands).

Each of those is a new interpreter that imports Django, Django REST framework, Channels,
dramatiq, NumPy, Pillow, psycopg, the S3 client, uvicorn...: about half a second of CPU
before it does anything, and a test run starts some 150 of them. The zygote imports
those libraries (not the platform: no settings are read, no app is set up) and, for each
start, forks a child that takes the start's arguments, environment, log file and
descriptors and runs ``manage.py`` or ``-m <module>`` as the interpreter would. What the
child reads from its environment it reads after the fork, so the environment of each
start counts as it would for a new interpreter.

The test process asks over a Unix socket (one connection per child, which stays open and
carries the child's exit status once the zygote has reaped it) and gets a ``Forked``,
which answers like ``subprocess.Popen`` (``pid``, ``poll``, ``wait``, ``returncode``,
``send_signal``, ``terminate``, ``kill``). Starts the zygote cannot serve as a new
interpreter would (another ``PYTHONPATH``, a ``-c`` program) fall back to ``Popen``.

Tests only: production starts its processes as the Helm chart says.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What a worker, a web server and ``manage.py`` import before the platform's own modules
#: (each brings its dependencies), as far as it imports without settings. A name that
#: does not import here is skipped: it is imported after the fork, as before.
PRELOAD = (
    "numpy", "numpy.random", "PIL.Image", "PIL.ImageDraw", "PIL.ExifTags", "psycopg", "psycopg_pool",
    "redis", "minio", "certifi", "urllib3", "google_crc32c", "cryptography", "pluggy",
    "dj_database_url", "dramatiq", "dramatiq.brokers.redis", "dramatiq.brokers.rabbitmq",
    "django_dramatiq", "django_dramatiq.middleware", "asgiref.sync", "anyio", "click",
    "uvicorn", "uvicorn.main", "uvicorn.config", "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl", "uvicorn.protocols.websockets.websockets_impl",
    "uvicorn.lifespan.on", "uvicorn.loops.auto", "websockets", "channels",
    "channels.routing", "channels.generic.websocket", "channels.auth", "channels_redis.core",
    "channels_redis.pubsub", "msgpack", "whitenoise.middleware", "whitenoise.storage",
    "csp.middleware", "axes.handlers", "django_filters", "drf_spectacular",
    "drf_spectacular.types", "drf_spectacular.utils", "rest_framework",
    "rest_framework.authentication", "rest_framework.negotiation", "rest_framework.metadata",
    "rest_framework.urlpatterns", "django.core.management", "django.core.management.sql",
    "django.core.asgi", "django.core.handlers.asgi", "django.core.handlers.wsgi",
    "django.db.models", "django.db.backends.postgresql.base", "django.db.backends.base.schema",
    "django.db.backends.base.creation", "django.db.backends.base.introspection",
    "django.db.migrations", "django.forms", "django.template.defaulttags",
    "django.template.loader_tags", "django.contrib.admin.apps", "django.contrib.auth.apps",
    "django.contrib.postgres.fields", "django.contrib.staticfiles.storage",
    "django.contrib.sessions.backends.db", "django.contrib.messages.middleware",
    "django.middleware.common", "django.middleware.security", "django.middleware.csrf",
    "django.views.generic", "django.views.defaults", "django.urls", "django.test",
    "multiprocessing.connection", "tarfile", "zipfile", "json", "uuid", "logging.config",
)  # fmt: skip

#: Variables a new interpreter reads as it starts (or that the preloaded libraries read as
#: they import): a start that sets them otherwise than the zygote gets a new interpreter.
STARTUP_VARIABLES = ("PYTHON", "OPENBLAS", "OMP_", "MKL_", "NPY_", "LD_")

_HEADER = struct.Struct("!I")


# --- the zygote ------------------------------------------------------------------------
def preload() -> list[str]:
    """Import ``PRELOAD``; the names that failed. No settings may be read doing so."""
    import importlib

    failed = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - left to the child, which imports it with settings
            failed.append(name)
    from django.conf import settings

    assert not settings.configured, "a preloaded module read the settings"
    return failed


def serve(path: str):
    """Accept starts on ``path`` until stopped; returns only in a forked child, with the
    function that runs what it was asked to."""
    _die_with_parent()
    failed = preload()
    import gc
    import threading

    assert threading.active_count() == 1, "the zygote must not fork with threads running"
    gc.collect()
    gc.freeze()  # the children's collections skip what the zygote imported

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    waiting: dict[int, socket.socket] = {}  # pid → the connection its status goes to
    print(f"zygote ready (not preloaded: {', '.join(failed) or 'none'})", flush=True)

    while True:
        for key, _ in selector.select():
            if key.data == "child":
                os.read(wake_r, 4096)
                _report_exits(waiting)
                continue
            conn, _ = listener.accept()
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError):
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                selector.close()
                listener.close()
                for fd in (wake_r, wake_w):
                    os.close(fd)
                for other in waiting.values():
                    other.close()
                conn.close()
                return lambda: _run(request, fds)
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                conn.sendall(f"{pid}\n".encode())
            waiting[pid] = conn
        _report_exits(waiting)  # a child that ended before it was registered


def _die_with_parent() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: the test process is gone
    if os.getppid() == 1:
        os._exit(1)


def _report_exits(waiting: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = waiting.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            conn.close()


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds = b"", []
    while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
        chunk, ancillary, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += list(
                    struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) // 4 * 4])
                )
        if not chunk:
            raise ValueError("the request ended early")
        data += chunk
    return json.loads(data[_HEADER.size :]), fds


def _run(request: dict, fds: list[int]) -> None:
    """In the child: become the process ``request`` describes, then run it."""
    # The descriptors passed on keep the numbers they had in the test process
    # (``DIGITS_JOB_LAUNCHER=fd:N``): out of the way first, then into place.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 1024) for fd in fds]
    for fd in fds:
        os.close(fd)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    for source, target in zip(high, request["fds"], strict=True):
        os.dup2(source, target)
        os.close(source)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if "numpy.random" in sys.modules:  # seeded from the system, as in a new interpreter
        sys.modules["numpy.random"].seed()
    args = request["args"]
    import runpy

    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        script = os.path.join(request["cwd"], args[0])
        sys.argv = list(args)
        sys.path[0] = os.path.dirname(script)
        runpy.run_path(script, run_name="__main__")


# --- the test process's side --------------------------------------------------------------
class Forked:
    """A child of the zygote, as ``subprocess.Popen`` shows a child: the zygote reaps it and
    sends its exit status (negative: the signal that ended it) over ``conn``."""

    def __init__(self, pid: int, conn: socket.socket, args):
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self._conn = conn
        self._received = b""
        try:  # signals go to this process, never to a later one given the same pid
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # it has ended already: its status is on its way
            self._pidfd = -1

    def poll(self) -> int | None:
        return self._status(timeout=0)

    def wait(self, timeout: float | None = None) -> int:
        status = self._status(timeout)
        if status is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return status

    def _status(self, timeout: float | None) -> int | None:
        import select

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._conn], [], [], left)[0]:
                return None
            chunk = self._conn.recv(64)
            self._received += chunk
            if not chunk or self._received.endswith(b"\n"):
                self._conn.close()
                if self._pidfd >= 0:
                    os.close(self._pidfd)
                    self._pidfd = -1
                text = self._received.strip()
                self.returncode = int(text) if text else -signal.SIGKILL  # the zygote died
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None and self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    """The test process's zygote: ``start(args, env, log_path, pass_fds)`` gives a
    ``Forked`` for the starts it ``serves``."""

    def __init__(self, env: dict[str, str], folder: Path):
        # No settings module: a preloaded library that read the settings would fail.
        env = {k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}
        self.env = env
        self.path = str(folder / "zygote.sock")
        self._log = open(folder / "zygote.log", "wb")  # noqa: SIM115  closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.zygote", self.path], cwd=ROOT, env=env,
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.log_path = folder / "zygote.log"
        self._is_ready: bool | None = None  # None until known

    def _ready(self, timeout: float = 60) -> bool:
        """Whether the zygote serves; waits for its preload the first time only (a zygote
        that failed is not waited for again: its starts get a new interpreter)."""
        deadline = time.monotonic() + timeout
        while self._is_ready is None:
            if b"zygote ready" in self.log_path.read_bytes():
                self._is_ready = True
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                self._is_ready = False
            else:
                time.sleep(0.02)
        return self._is_ready and self.proc.poll() is None

    def serves(self, args, env: dict[str, str]) -> bool:
        """Whether a fork of the zygote runs ``args`` as a new interpreter would."""
        if not args or args[0] == "-c" or (args[0] != "-m" and not args[0].endswith(".py")):
            return False

        def startup(e):
            return {k: v for k, v in e.items() if k.startswith(STARTUP_VARIABLES)}

        return startup(env) == startup(self.env) and self._ready()

    def start(self, args, env: dict[str, str], log_path: Path, pass_fds=()) -> Forked:
        """Fork a child that runs ``args`` (``serves`` said it can)."""
        if not self._ready():
            raise RuntimeError("the zygote did not start:\n" + self.log())
        args = list(args)
        request = json.dumps({
            "args": args, "env": env, "cwd": str(ROOT), "log": str(log_path),
            "fds": list(pass_fds),
        }).encode()  # fmt: skip
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(self.path)
        message = _HEADER.pack(len(request)) + request
        ancillary = []
        if pass_fds:
            payload = struct.pack(f"{len(pass_fds)}i", *pass_fds)
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, payload)]
        sent = conn.sendmsg([message], ancillary)
        conn.sendall(message[sent:])
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = conn.recv(64)
            if not chunk:
                raise RuntimeError("the zygote did not start the process:\n" + self.log())
            reply += chunk
        return Forked(int(reply), conn, args)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


if __name__ == "__main__":
    serve(sys.argv[1])()
