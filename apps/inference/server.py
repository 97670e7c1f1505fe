"""The inference server: answers ``apps.inference.service`` over an authenticated socket.

Trusted like a job worker (it reads the store and, for its sweeps, the database); the
models run in its sandboxed model processes (``apps.inference.host``). One thread per
client connection; a web process keeps one connection per thread. Started by
``manage.py inference`` (a Deployment of its own in the Helm chart) or, in the embedded
default, inside ``manage.py serve``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener

from apps.inference import protocol, service
from apps.inference.host import Host, run_sweeps
from apps.inference.service import InferenceError

log = logging.getLogger(__name__)


class InferenceServer:
    def __init__(self, where: tuple | None = None):
        self.where = where or service.address()
        if self.where[1] == "AF_UNIX":
            _remove_stale_socket(self.where[0])
        self.listener = Listener(self.where[0], family=self.where[1], authkey=service.auth_key())
        if self.where[1] == "AF_UNIX":
            os.chmod(self.where[0], 0o600)
        self.host = Host()
        self.stopping = threading.Event()
        self.serving: threading.Thread | None = None

    def serve_forever(self) -> None:
        """Accept until ``stop()``; the listener is closed here, by the accepting thread."""
        self.serving = threading.current_thread()
        threading.Thread(target=run_sweeps, args=(self.host, self.stopping), daemon=True).start()
        try:
            while not self.stopping.is_set():
                try:
                    conn = self.listener.accept()
                except (AuthenticationError, EOFError, ConnectionError):
                    continue  # a client without the key, or one that went away
                except OSError:
                    if self.stopping.is_set():
                        return
                    raise
                threading.Thread(target=self._session, args=(conn,), daemon=True).start()
        finally:
            with contextlib.suppress(OSError):
                self.listener.close()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True, name="inference")
        self.serving = thread
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop accepting, then the model processes. The listener is not closed from here
        while another thread accepts on it: its descriptor number would go to the next
        socket made (another server's listener, in the test suite's process), which the old
        thread would then accept on. Shutting it down wakes that thread, which closes it."""
        self.stopping.set()
        serving = self.serving
        if serving is None or serving is threading.current_thread():
            with contextlib.suppress(OSError):
                self.listener.close()
        else:
            # multiprocessing's Listener keeps its socket as ``_listener._socket`` (None
            # once closed).
            inner = self.listener._listener
            with contextlib.suppress(OSError):
                if inner is not None:
                    inner._socket.shutdown(socket.SHUT_RDWR)
            serving.join(timeout=10)
        self.host.close()

    def _session(self, conn) -> None:
        from django.db import close_old_connections

        with contextlib.closing(conn):
            while True:
                try:
                    header, arrays = protocol.recv(conn)
                except (EOFError, OSError, protocol.ProtocolError):
                    return
                try:
                    reply, out = self.dispatch(header, arrays)
                    reply["ok"] = True
                except InferenceError as exc:
                    reply, out = {"ok": False, "error": str(exc), "status": exc.status,
                                  "field": exc.field}, {}  # fmt: skip
                finally:
                    close_old_connections()
                protocol.send(conn, reply, out)

    def dispatch(self, header: dict, arrays: dict) -> tuple[dict, dict]:
        op = header.get("op")
        if op == "predict":
            return self.host.predict(
                header["request"], arrays["inputs"], bool(header.get("layers"))
            )
        if op == "evict":
            return {"evicted": self.host.evict(int(header["model_id"]))}, {}
        if op == "status":
            return self.host.status(), {}
        if op == "sweep":
            return {"evicted": self.host.sweep()}, {}
        raise InferenceError(f"Unknown request {op!r}.", status=400)


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a server that died; one that answers is left alone (and the
    new server then fails to bind, as it should)."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return
    try:
        Client(path, family="AF_UNIX", authkey=service.auth_key()).close()
    except (OSError, EOFError, AuthenticationError):
        os.unlink(path)
