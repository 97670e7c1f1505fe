"""A fork server for job and model processes: ``python -m apps.jobs.forkserver <fd> [module,...]``.

Starting a job process used to cost a fresh interpreter that imported TensorFlow, Keras and
NumPy (about 4 s of CPU on a 2-core node) before the job did anything. This process imports
them once (the preload) and forks a process per request; the forked process then does
exactly what ``python -m apps.jobs.child`` does — confine itself, set Django up with the
credential-free job settings, run the job kind — with its modules already in memory. The
inference server's model processes (``python -m apps.inference.child``: confine itself,
set Django up, serve its server's requests) are forked the same way (``main``, below).

Like ``apps.jobs.confine`` (which it uses) it runs before Django and uses the standard
library only (the preloaded modules are third-party libraries that read no settings). It is started with the
allow-listed job environment (``apps.jobs.sandbox.environment``), never runs a job kind,
a model or a user's code itself, and keeps no credential.

The protocol (``SOCK_SEQPACKET``, one JSON message each, file descriptors alongside):

``{"op": "start", "env": {...}, "cwd": "...", "main": "apps.jobs.child", "session": false}``
+ the process's stdin, stdout and stderr and its own descriptors (``MAINS``)
    fork a process that runs ``main`` (one of ``MAINS``; ``apps.jobs.child`` when left
    out) with its descriptors as 3, 4, ... (named so in its ``argv``), in a process group
    of its own or, with ``session``, a session of its own; the answer is
    ``{"started": pid}`` with a pidfd of the process (signals sent through it never reach
    a reused pid); once the process has ended and was reaped, ``{"exited": pid,
    "returncode": n, "utime": s, "stime": s, "maxrss": KiB}`` (``os.wait4``'s figures, as
    ``apps.usage.process`` records them).
``{"op": "adopt"}`` + a socket
    serve that socket as one more connection (one per worker process when several share
    one server: the test suite's).
``{"op": "ping"}``
    answered ``{"ready": true, "preloaded": [module, ...]}`` (those of the preload that
    imported): the server answers nothing before its preload is done
    (``ForkServer.wait_ready``).

The server stops when the connection it was started with closes. When any connection
closes — its worker process ended or was killed — the processes started over it are
killed, as a job process dies with its worker (``apps.jobs.runner``).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import importlib.machinery
import json
import os
import selectors
import signal
import socket
import sys
import tempfile
import traceback
from collections.abc import Sequence

from apps.jobs import confine

MAX_MESSAGE = 4 * 1024 * 1024  # an environment and a folder; the spec goes over stdin
EVENTS_FD = 3  # the job's event pipe, as ``apps.jobs.child`` is told
#: What a forked process may run: its module (whose ``main(argv)`` it calls, as ``python -m``
#: would) and how many descriptors it gets besides stdin, stdout and stderr.
MAINS = {
    "apps.jobs.child": 1,  # the event pipe
    "apps.inference.child": 2,  # the request and reply pipes
}


#: Not imported by the preload unless asked for by name, although what it imports would:
#: Keras imports its optional scikit-learn wrappers (``keras.wrappers``), and with them
#: scikit-learn, wherever it is installed — a node image that adds it, the test suite's
#: environment: 1.2–1.4 s of a server's ~9.7 s of CPU to ready and 56 MB of its memory
#: on a slow 2-core machine, for wrappers no job kind uses. A job that imports
#: scikit-learn itself still can (only Keras' wrappers, imported without it, cannot).
NOT_PRELOADED = ("sklearn",)


def preload(modules: list[str]) -> None:
    """Import what every job process would import; a module that fails is left out."""
    hidden = [
        name for name in NOT_PRELOADED
        if name not in sys.modules and not any(m.split(".")[0] == name for m in modules)
    ]  # fmt: skip
    for name in hidden:
        sys.modules[name] = None  # importing it raises ImportError, as if not installed
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - a preload is an optimisation only
                print(f"forkserver: {name} not preloaded: {exc}", file=sys.stderr, flush=True)
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:  # not imported since
                del sys.modules[name]


class Server:
    def __init__(self, control: socket.socket, preloaded: Sequence[str] = ()):
        self.control = control
        self.preloaded = list(preloaded)  # what was asked for; in sys.modules if it imported
        self.selector = selectors.DefaultSelector()
        self.connections: list[socket.socket] = []
        self.children: dict[int, tuple[int, socket.socket | None]] = {}  # pidfd → pid, connection
        self._serve_connection(control)

    def _serve_connection(self, conn: socket.socket) -> None:
        conn.setblocking(True)
        self.connections.append(conn)
        self.selector.register(conn, selectors.EVENT_READ, "connection")

    def serve(self) -> None:
        while self.connections:
            for key, _ in self.selector.select():
                if key.data == "child":
                    self._reap(key.fd)
                elif not self._receive(key.fileobj) and key.fileobj is self.control:
                    self._close_all()
                    return

    # --- requests ----------------------------------------------------------------------
    def _receive(self, conn: socket.socket) -> bool:
        """Answer one message; False once ``conn`` has closed (its job processes killed)."""
        try:
            data, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 8)
        except OSError:
            data, fds = b"", []
        if not data:
            self._drop(conn)
            return False
        try:
            request = json.loads(data)
        except ValueError:
            request = {"op": None}
        try:
            if request.get("op") == "adopt" and len(fds) == 1:
                self._serve_connection(socket.socket(fileno=fds.pop()))
            elif request.get("op") == "start" and _descriptors(request) == len(fds):
                self._start(conn, request, fds)
            elif request.get("op") == "ping" and not fds:
                loaded = [name for name in self.preloaded if name in sys.modules]
                self._send(conn, {"ready": True, "preloaded": loaded})  # the preload is done
            else:
                self._send(conn, {"error": f"bad request {request.get('op')!r}"})
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def _send(self, conn: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
        with contextlib.suppress(OSError):  # a worker gone: its connection closes next round
            socket.send_fds(conn, [json.dumps(message).encode()], list(fds))

    def _start(self, conn: socket.socket, request: dict, fds: list[int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        server = os.getpid()
        # Everything the server holds (the preload: some 380,000 objects) goes into the
        # collector's permanent generation, which the child's collections never walk. A
        # full collection in a job or model process otherwise wrote to every one of them
        # and so copied 86 MB of the server's pages into the process (and walked them,
        # about a third of a second). What the ``gc`` documentation advises for a fork
        # without exec; the server itself frees nothing it would need to collect.
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = self._become_child(request, fds, server)
            except BaseException:  # noqa: BLE001 - reported on the job's stderr
                traceback.print_exc()
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(OSError, ValueError):
                        stream.flush()
                os._exit(code)
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = (pid, conn)
        self.selector.register(pidfd, selectors.EVENT_READ, "child")
        self._send(conn, {"started": pid}, (pidfd,))

    def _reap(self, pidfd: int) -> None:
        pid, conn = self.children.pop(pidfd)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _, status, ru = os.wait4(pid, 0)
        if conn is None:
            return  # its worker is gone
        self._send(conn, {
            "exited": pid, "returncode": os.waitstatus_to_exitcode(status),
            "utime": ru.ru_utime, "stime": ru.ru_stime, "maxrss": ru.ru_maxrss,
        })  # fmt: skip

    def _drop(self, conn: socket.socket) -> None:
        """``conn``'s worker is gone: so are the job processes it started."""
        self.selector.unregister(conn)
        self.connections.remove(conn)
        conn.close()
        for pidfd, (pid, owner) in list(self.children.items()):
            if owner is conn:
                _kill_group(pid)
                self.children[pidfd] = (pid, None)  # reaped as usual, told to no one

    def _close_all(self) -> None:
        for conn in list(self.connections):
            self._drop(conn)
        for pidfd, (pid, _) in list(self.children.items()):
            os.waitpid(pid, 0)
            os.close(pidfd)

    # --- in the forked process ------------------------------------------------------------
    def _become_child(self, request: dict, fds: list[int], server: int) -> int:
        """What ``python -m <main> 3 ...`` is, from a process that already imported the heavy
        modules: the process's pipes and folder, its environment, then ``main``."""
        if request.get("session"):
            os.setsid()  # as ``Popen(start_new_session=True)``: the inference server's
        else:
            os.setpgrp()  # its own process group, as the runner's exec'd job process has
        confine.die_with_parent()  # the server
        if os.getppid() != server:
            return 137
        confine.make_dumpable()  # the server is not; a job process is, as if exec'd
        self.selector.close()
        for conn in self.connections:
            conn.detach()  # the descriptor closes below; the object must not close it later
        # Out of the way of 0 .. n-1 first: a received descriptor may have a target's number.
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, len(fds)) for fd in fds]
        for target, fd in enumerate(moved):
            os.dup2(fd, target)
        os.closerange(len(fds), os.sysconf("SC_OPEN_MAX"))
        fds.clear()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _as_a_fresh_process(request["cwd"])
        main = request["main"]
        # ``python -m`` finds ``main`` before the process confines itself, listing the folders
        # of ``sys.path`` up to the one that holds it, and later imports (``digits_site``)
        # use those listings. The fork emptied them, and a process confined by Landlock may
        # not list a folder it may read only in part (the checkout, when the data folder is
        # in it): list them now, as an exec'd process has.
        importlib.machinery.PathFinder.find_spec(main.partition(".")[0])
        argv = [main, *(str(fd) for fd in range(EVENTS_FD, EVENTS_FD + MAINS[main]))]
        return importlib.import_module(main).main(argv)


def _descriptors(request: dict) -> int | None:
    """How many descriptors a start request must come with; None: not a main it may run."""
    main = request.setdefault("main", "apps.jobs.child")
    return 3 + MAINS[main] if main in MAINS else None


def _kill_group(pid: int) -> None:
    for kill, target in ((os.killpg, pid), (os.kill, pid)):
        with contextlib.suppress(OSError):
            kill(target, signal.SIGKILL)


def _python_path() -> list[str]:
    """``PYTHONPATH``'s folders, as a new interpreter puts them on ``sys.path``."""
    return [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


#: The server's own ``PYTHONPATH`` folders (replaced by each job's).
_SERVER_PATH: list[str] = []


def _as_a_fresh_process(cwd: str) -> None:
    """Undo what the fork shares with the server and a new interpreter would not have."""
    rest = sys.path[1:]
    for folder in _SERVER_PATH:
        if folder in rest:
            rest.remove(folder)
    # ``python -m`` puts the working folder first, then PYTHONPATH (a plugin installed
    # into a folder of its own after the server started is found there).
    sys.path[:] = [cwd, *_python_path(), *rest]
    importlib.invalidate_caches()
    tempfile.tempdir = None  # read TMPDIR again
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # its global generator would repeat in every job otherwise


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[1]))
    _SERVER_PATH[:] = _python_path()
    confine.make_undumpable()  # a job of the same user cannot read or trace this process
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    modules = [m for m in (argv[2] if len(argv) > 2 else "").split(",") if m]
    preload(modules)
    for name in MAINS:
        importlib.import_module(name)
    gc.collect()  # the preload's garbage, before what is left is frozen (``Server._start``)
    Server(control, modules).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
