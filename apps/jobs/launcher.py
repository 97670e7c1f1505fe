"""Starting a job process, as ``DIGITS_JOB_LAUNCHER`` says (docs/decisions/0021), and the
inference server's model processes the same way (``start_process``).

``fork`` (the default)
    A fork server of this worker process (``apps.jobs.forkserver``), started with the first
    job, has imported ``DIGITS_JOB_PRELOAD`` (TensorFlow, Keras, NumPy, ...) once and forks
    each job process from there: a TensorFlow job reaches its first step in a third of a
    second instead of five. If the server cannot start, jobs are exec'd (logged).
``exec``
    A new interpreter per job (``python -m apps.jobs.child``).
``fd:N``
    A connection, inherited as descriptor ``N``, to a fork server that several worker
    processes share (the test suite's: one per test process, each worker it starts gets a
    connection of its own). Nothing reachable by name: a job process cannot connect to it.

Either way the job process is the same: the allow-listed environment, the job's folder as
working folder, stdin (the spec), stdout, stderr and the event pipe, its own process
group, dead when its worker dies, measured with ``os.wait4``'s figures.

An inference server (``apps.inference.host``) starts its model processes
(``apps.inference.child``) through the same setting and the same kind of server, one of
its own: forked, or exec'd with ``exec``, in a session of their own either way.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

from django.conf import settings

from apps.jobs.forkserver import MAX_MESSAGE
from apps.usage.process import MeasuredPopen

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
START_TIMEOUT = 180  # a server's first answer waits for its preload (seconds)


def _die_with_parent() -> None:
    # Linux: an exec'd job process is killed when the worker thread that started it
    # dies, so a killed worker never leaves an orphan job running unobserved.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgrp()


def start(env: dict[str, str], cwd: str) -> tuple[MeasuredPopen | ForkedProcess, int]:
    """Start a job process; the process (``Popen``'s interface) and the read end of its
    event pipe."""
    return _with_event_pipe(lambda fd: start_process("apps.jobs.child", env, cwd, (fd,)))


def _with_event_pipe(spawn):
    """``spawn(write end)`` of a new event pipe: (the process, the read end)."""
    read_fd, write_fd = os.pipe()
    try:
        proc = spawn(write_fd)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return proc, read_fd


def start_process(
    main: str, env: dict[str, str], cwd: str, fds: tuple[int, ...], *,
    session: bool = False, stderr_to_stdout: bool = False,
) -> MeasuredPopen | ForkedProcess:  # fmt: skip
    """Start ``python -m <main> <fd> ...`` (one of ``apps.jobs.forkserver.MAINS``) or fork
    it from this process's fork server: the process (``Popen``'s interface) with pipes on
    its stdin, stdout and stderr (one pipe for both with ``stderr_to_stdout``) and ``fds``
    (which stay the caller's to close). Its own process group, dead with the thread that
    started it; with ``session``, a session of its own instead (no parent-death signal
    when exec'd, as the inference server's model processes always had)."""
    forks = server()
    if forks is not None:
        try:
            return forks.spawn(
                main, env, cwd, fds, session=session, stderr_to_stdout=stderr_to_stdout
            )
        except ServerGone:
            if settings.DIGITS_JOB_LAUNCHER != "fork":
                raise
            log.exception("the job fork server failed; this %s process is exec'd", main)
    how = {"start_new_session": True} if session else {"preexec_fn": _die_with_parent}
    return MeasuredPopen(
        [sys.executable, "-m", main, *(str(fd) for fd in fds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if stderr_to_stdout else subprocess.PIPE,
        pass_fds=fds, cwd=cwd, env=env, **how,
    )  # fmt: skip


class ForkedProcess:
    """What the runner uses of ``subprocess.Popen``, for a process a fork server started."""

    def __init__(self, pid: int, pidfd: int, stdin: int, stdout: int, stderr: int | None):
        self.pid = pid
        self.stdin = open(stdin, "wb")  # noqa: SIM115 - closed by the runner
        self.stdout = open(stdout, "rb")  # noqa: SIM115
        self.stderr = None if stderr is None else open(stderr, "rb")  # noqa: SIM115
        self.returncode: int | None = None
        self.rusage: SimpleNamespace | None = None
        self.started = time.monotonic()
        self.ended: float | None = None
        self._pidfd = pidfd
        self._lock = threading.Lock()
        self._exited = threading.Event()

    def exited(self, returncode: int, rusage: SimpleNamespace | None) -> None:
        with self._lock:
            self.returncode, self.rusage, self.ended = returncode, rusage, time.monotonic()
            os.close(self._pidfd)
            self._pidfd = -1
        self._exited.set()

    def poll(self) -> int | None:
        return self.returncode if self._exited.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"job process {self.pid}", timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        with self._lock:
            if self._pidfd >= 0:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    @property
    def run_seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started


class ServerGone(RuntimeError):
    """The fork server closed its connection (it died): no job can start through it."""


class ForkServer:
    """This worker process's connection to a fork server."""

    def __init__(self, sock: socket.socket, process: subprocess.Popen | None = None):
        self.sock = sock
        self.process = process  # ours to stop ("fork"); None for a shared one ("fd:N")
        self.gone = False
        self.closing = False
        self._request = threading.Lock()  # one start at a time: answers come in order
        self._answers: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._running: dict[int, ForkedProcess] = {}
        self._ended: dict[int, dict] = {}  # ended before its start was answered
        self._reader = threading.Thread(target=self._read, name="forkserver", daemon=True)
        self._reader.start()

    def start(self, env: dict[str, str], cwd: str) -> tuple[ForkedProcess, int]:
        """Fork a job process: the process and the read end of its event pipe."""
        return _with_event_pipe(lambda fd: self.spawn("apps.jobs.child", env, cwd, (fd,)))

    def spawn(
        self, main: str, env: dict[str, str], cwd: str, fds: tuple[int, ...] = (), *,
        session: bool = False, stderr_to_stdout: bool = False,
    ) -> ForkedProcess:  # fmt: skip
        """Fork a process that runs ``main`` (``start_process`` says the rest)."""
        stdin, stdout = os.pipe(), os.pipe()
        stderr = None if stderr_to_stdout else os.pipe()
        theirs = [stdin[0], stdout[1], (stderr or stdout)[1]]
        ours = [stdin[1], stdout[0], *([stderr[0]] if stderr else [])]
        message = {"op": "start", "env": env, "cwd": cwd, "main": main, "session": session}
        try:
            answer, received = self._ask(message, [*theirs, *fds])
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in {*theirs}:  # stdout's write end once, when it is stderr's too
                os.close(fd)
        if "error" in answer:
            for fd in ours + received:
                os.close(fd)
            raise RuntimeError(f"the fork server refused the process: {answer['error']}")
        proc = ForkedProcess(answer["started"], received[0], *ours[:2], ours[2] if stderr else None)
        with self._lock:
            ended = self._ended.pop(proc.pid, None)
            if ended is None:
                self._running[proc.pid] = proc
        if ended is not None:
            proc.exited(*_outcome(ended))
        return proc

    def wait_ready(self, timeout: float = START_TIMEOUT) -> list[str]:
        """Once the server has preloaded, the modules it preloaded (``ServerGone`` if it
        died or did not answer in ``timeout`` seconds)."""
        answer, _ = self._ask({"op": "ping"}, [], timeout)
        if not answer.get("ready"):
            raise ServerGone(f"the job fork server answered {answer!r} to a ping")
        return answer["preloaded"]

    def close(self) -> None:
        """Close the connection: the server kills the job processes it started over it
        and, when the connection was the one it started with, stops."""
        self.closing = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread: EOF from now
        # Closed once no thread can be about to use its descriptor number (the reader, a
        # start in progress): a number closed under them goes to the next socket made.
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=10)
        with self._request:
            self.sock.close()
        if self.process is not None:
            self.process.wait(timeout=60)

    def _ask(
        self, message: dict, fds: list[int], timeout: float = START_TIMEOUT
    ) -> tuple[dict, list[int]]:
        with self._request:
            if self.gone:
                raise ServerGone("the job fork server is gone")
            socket.send_fds(self.sock, [json.dumps(message).encode()], fds)
            try:
                answer = self._answers.get(timeout=timeout)
            except queue.Empty:
                raise ServerGone("the job fork server did not answer") from None
        if answer is None:
            raise ServerGone("the job fork server is gone")
        return answer  # the message and the descriptors that came with it

    def _read(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 1)
            except OSError:
                data = b""
            if not data:
                return self._lost()
            message = json.loads(data)
            if "exited" not in message:
                self._answers.put((message, fds))
                continue
            with self._lock:
                proc = self._running.pop(message["exited"], None)
                if proc is None:
                    self._ended[message["exited"]] = message
            if proc is not None:
                proc.exited(*_outcome(message))

    def _lost(self) -> None:
        """The server died; so did its job processes (they die with it)."""
        if not self.closing:
            log.error("the job fork server is gone; its running jobs ended with it")
        self.gone = True
        self._answers.put(None)
        with self._lock:
            running, self._running = list(self._running.values()), {}
        for proc in running:
            proc.exited(-signal.SIGKILL, None)


def _outcome(message: dict) -> tuple[int, SimpleNamespace]:
    rusage = SimpleNamespace(
        ru_utime=message["utime"], ru_stime=message["stime"], ru_maxrss=message["maxrss"]
    )
    return message["returncode"], rusage


# --- the server of this process --------------------------------------------------------------
_servers: dict[str, ForkServer | None] = {}
_servers_lock = threading.Lock()


def server() -> ForkServer | None:
    """The fork server ``DIGITS_JOB_LAUNCHER`` names for this process; None: exec."""
    how = settings.DIGITS_JOB_LAUNCHER
    if how == "exec":
        return None
    with _servers_lock:
        found = _servers.get(how)
        if found is None or (found.gone and how == "fork"):
            if found is not None and found.process is not None:
                found.process.poll()  # reap the dead one
            found = _servers[how] = _connect(how)
        return found


def _connect(how: str) -> ForkServer | None:
    if how.startswith("fd:"):
        return ForkServer(socket.socket(fileno=int(how[3:])))
    if how != "fork":
        raise ValueError(f"DIGITS_JOB_LAUNCHER: 'fork', 'exec' or 'fd:N', not {how!r}")
    try:
        return spawn_server()
    except OSError:
        log.exception("the job fork server did not start; job processes are exec'd")
        return None


def spawn_server() -> ForkServer:
    """Start a fork server that preloads ``DIGITS_JOB_PRELOAD`` in a job's environment
    (``apps.jobs.sandbox.server_environment``); this process's connection to it."""
    from apps.jobs import sandbox

    env = sandbox.server_environment()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "apps.jobs.forkserver", str(theirs.fileno()),
             ",".join(settings.DIGITS_JOB_PRELOAD)],
            pass_fds=(theirs.fileno(),), cwd=settings.BASE_DIR, env=env,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    finally:
        theirs.close()
    log.info("job fork server %s started (preloading %s)", process.pid, settings.DIGITS_JOB_PRELOAD)
    return ForkServer(ours, process)


def adopt(server: ForkServer) -> socket.socket:
    """A new connection to ``server`` for another process (pass it as ``fd:N``): the job
    processes started over it die when it closes, i.e. with that process."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        with server._request:
            socket.send_fds(server.sock, [json.dumps({"op": "adopt"}).encode()], [theirs.fileno()])
    finally:
        theirs.close()
    return ours
