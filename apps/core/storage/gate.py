"""The artifact store of a job process: every request goes to its worker's gate.

A job process holds no store credential (see ``apps.jobs.artifacts`` for the
worker's side and what it allows). ``get_store()`` returns a ``GateStore`` when
``DIGITS_JOB_ARTIFACT_SOCKET`` is set, which only ``digits_site.job_settings`` does.
Requests are small JSON messages on a Unix ``SOCK_SEQPACKET`` socket; bytes move
as file descriptors, never through the socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any

from .base import ArtifactNotFound, ArtifactStore, StoreUnavailable, copy_stream, validate_key

MAX_REQUEST = 64 * 1024


class Denied(PermissionError):
    """The job may not read or write this key (the same answer whether it exists or not)."""


class GateStore(ArtifactStore):
    """The artifact store as a job process sees it: every call goes through the gate."""

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        self._pid = os.getpid()

    def _socket(self) -> socket.socket:
        sock = getattr(self._local, "sock", None)
        if sock is None or self._pid != os.getpid():  # a forked pool process: its own line
            self._pid = os.getpid()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            sock.connect(self.path)
            self._local.sock = sock
        return sock

    def _call(
        self, op: str, fd: int | None = None, **fields: Any
    ) -> tuple[dict[str, Any], int | None]:
        sock = self._socket()
        socket.send_fds(
            sock, [json.dumps({"op": op, **fields}).encode()], [fd] if fd is not None else []
        )
        data, fds, _, _ = socket.recv_fds(sock, MAX_REQUEST, 1)
        if not data:
            raise StoreUnavailable("the worker closed the artifact gate")
        reply = json.loads(data)
        error = reply.get("error")
        if error:
            for extra in fds:
                os.close(extra)
            message = reply.get("message", "")
            if error == "not_found":
                raise ArtifactNotFound(message)
            if error == "denied":
                raise Denied(message)
            if error == "invalid":
                raise ValueError(message)
            if error == "failed":
                raise OSError(message)
            raise StoreUnavailable(message)
        return reply, (fds[0] if fds else None)

    # --- reading ---------------------------------------------------------------------------
    def open(self, key: str) -> IO[bytes]:
        _, fd = self._call("open", key=key)
        return os.fdopen(fd, "rb")

    def size(self, key: str) -> int:
        return int(self._call("size", key=key)[0]["size"])

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        _, fd = self._call("list", prefix=prefix)
        with os.fdopen(fd, "rb") as fh:
            for line in fh:
                yield line.decode().rstrip("\n")

    def cached_path(self, key: str) -> str:
        """A local path of a dataset file, downloaded once per node by the worker."""
        return self._call("cached", key=key)[0]["path"]

    def url(self, key, expires=None, filename=None):
        return None

    # --- writing ---------------------------------------------------------------------------
    def put_stream(self, key, fileobj, length=-1, content_type=None) -> None:
        with self.staged(key, content_type) as out:
            copy_stream(fileobj, out, length)

    @contextlib.contextmanager
    def staged(self, key: str, content_type: str | None = None) -> Iterator[IO[bytes]]:
        validate_key(key)
        with tempfile.TemporaryFile() as out:
            yield out
            out.flush()
            self._call("put", fd=out.fileno(), key=key, content_type=content_type)

    def put_file(self, key, path, content_type=None) -> None:
        with open(path, "rb") as fh:
            self._call("put", fd=fh.fileno(), key=key, content_type=content_type)

    def delete(self, key: str) -> None:
        self._call("delete", key=key)

    def publish(self, key: str) -> str:
        """Hand a staged artifact to the worker to publish now (see ``JobKind.publish_artifact``)."""
        return self._call("publish", key=key)[0]["key"]

    # --- not for jobs ----------------------------------------------------------------------
    def check(self) -> None:
        self._socket()

    def _move(self, src: str, dst: str) -> None:
        raise Denied("a job cannot move artifacts; the worker publishes them")

    def publish_prefix(self, staging_prefix: str, final_prefix: str) -> int:
        raise Denied("a job cannot publish its outputs; the worker does when it succeeds")
