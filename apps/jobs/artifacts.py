"""A job's only way to the artifact store: a narrow gate served by its worker.

The job process holds no store credential. Its ``get_store()`` is a
``GateStore`` that sends each request over a Unix socket in the job's working
folder to the worker's ``ArtifactGate``, which checks the request against what
the job's kind declared (``JobKind.inputs``) and answers with file descriptors:

- reads: only keys below the job's inputs (its dataset, its model's snapshots, the
  uploads it was given) and its own staging folder. The worker opens (or spools) the
  object and passes the descriptor; dataset files go through the node's dataset cache,
  downloaded once by the worker, and the job gets a path it may open but not list.
- writes: only below the job's staging prefix. The job writes into a file of its
  own and passes the descriptor; the worker uploads from it. Nothing the job names
  can make the worker read another file (no paths, no links: descriptors only).
- publishing while running (a training snapshot): the kind's ``publish_artifact``
  decides, in the worker, where a staged artifact goes; the job only names it. Its size
  is recorded for the owner's storage quota and the job's bytes written
  (``apps.usage.accounting.record_published``).

The job's side is ``apps.core.storage.gate.GateStore``. Everything else is refused with one answer, whether or not the key exists.
Connections are accepted only from the job's process group (``SO_PEERCRED``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import stat
import tempfile
import threading
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from apps.core.storage.base import (
    ArtifactNotFound,
    StoreUnavailable,
    copy_stream,
    normalize_prefix,
    validate_key,
)
from apps.core.storage.gate import MAX_REQUEST, Denied

if TYPE_CHECKING:
    from apps.jobs.kinds import Input, JobKind
    from apps.jobs.models import Job

log = logging.getLogger(__name__)

SOCKET_NAME = "artifacts.sock"
_CREDENTIALS = "3i"  # struct ucred: pid, uid, gid


# --- worker side ---------------------------------------------------------------------------
class ArtifactGate:
    """Serves one job's artifact requests; runs in the worker, with the worker's store."""

    def __init__(self, job: Job, kind: JobKind, folder: str, owner: tuple[int, int] | None):
        from apps.core.storage import get_store

        self.job, self.kind = job, kind
        self.store = get_store()
        self.staging = normalize_prefix(job.staging_prefix)
        self.inputs: list[Input] = list(kind.inputs(job.params))
        self.path = os.path.join(folder, SOCKET_NAME)
        self.spool = folder  # never visible to the job: the worker's own files are unlinked
        self.process_group: int | None = None
        self.closed = threading.Event()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(self.path)
        if owner is not None:
            os.chown(self.path, *owner)
        os.chmod(self.path, 0o600)
        self.listener.listen(16)
        self.thread = threading.Thread(target=self._accept, name=f"artifacts-{job.pk}", daemon=True)

    def start(self, process_group: int) -> None:
        self.process_group = process_group
        self.thread.start()

    def close(self) -> None:
        """Stop accepting. The listener is closed by the accept thread (woken by the
        shutdown), not here: closed while that thread is about to call ``accept`` on its
        descriptor number, the number would go to the next socket this worker makes —
        another job's gate — whose job's connection the old gate would then take and drop."""
        self.closed.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # accept() answers EINVAL from now
        if self.thread.ident is None:
            self.listener.close()  # never started
        elif self.thread is not threading.current_thread():
            self.thread.join(timeout=10)

    # --- connections ---------------------------------------------------------------------
    def _accept(self) -> None:
        try:
            while not self.closed.is_set():
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    return
                if not self._from_job(conn):
                    conn.close()
                    continue
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
        finally:
            self.listener.close()

    def _from_job(self, conn: socket.socket) -> bool:
        import struct

        creds = conn.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(_CREDENTIALS)
        )
        pid, _, _ = struct.unpack(_CREDENTIALS, creds)
        try:
            return os.getpgid(pid) == self.process_group
        except OSError:
            return False

    def _serve(self, conn: socket.socket) -> None:
        from django.db import connection

        try:
            with conn:
                while not self.closed.is_set():
                    data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 1)
                    if not data:
                        return
                    reply, out_fd = self._answer(data, fds)
                    try:
                        socket.send_fds(
                            conn,
                            [json.dumps(reply).encode()],
                            [out_fd] if out_fd is not None else [],
                        )
                    finally:
                        if out_fd is not None:
                            os.close(out_fd)
        except OSError:
            return
        finally:
            connection.close()  # the thread's own database connection (publish_artifact)

    def _answer(self, data: bytes, fds: list[int]) -> tuple[dict[str, Any], int | None]:
        try:
            request = json.loads(data)
            op = request["op"]
            handler = getattr(self, f"_op_{op}", None)
            if handler is None:
                raise ValueError(f"unknown operation {op!r}")
            return handler(request, fds[0] if fds else None)
        except Denied as exc:
            return {"error": "denied", "message": str(exc)}, None
        except ArtifactNotFound as exc:
            return {"error": "not_found", "message": str(exc.key)}, None
        except (ValueError, KeyError, TypeError) as exc:
            return {"error": "invalid", "message": str(exc)}, None
        except Exception as exc:  # the store failed: the job may retry or fail with the reason
            log.warning("job %s: artifact request failed: %s", self.job.pk, exc)
            # Unreachable after the retries (an infrastructure fault) or a refused request.
            error = "unavailable" if isinstance(exc, StoreUnavailable) else "failed"
            return {"error": error, "message": f"{type(exc).__name__}: {exc}"}, None
        finally:
            for fd in fds[1:]:
                os.close(fd)

    # --- checks --------------------------------------------------------------------------
    def _readable(self, key: str) -> Input | None:
        """The input that grants reading ``key`` (None for the job's own staging folder)."""
        validate_key(key)
        if key.startswith(self.staging):
            return None
        for item in self.inputs:
            if key == item.prefix or (item.prefix.endswith("/") and key.startswith(item.prefix)):
                return item
        raise Denied(f"the job may not read {key!r}")

    def _writable(self, key: str) -> str:
        validate_key(key)
        if not key.startswith(self.staging):
            raise Denied(f"the job may write only below {self.staging!r}, not {key!r}")
        return key

    def _spooled(self, fill) -> int:
        """A descriptor, at offset 0, of an unlinked file that ``fill`` wrote."""
        with tempfile.TemporaryFile(dir=self.spool) as spool:
            fill(spool)
            spool.flush()
            fd = os.dup(spool.fileno())
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    # --- operations ----------------------------------------------------------------------
    def _op_open(self, request, _fd):
        key = request["key"]
        self._readable(key)
        with self.store.open(key) as fh:
            fd = _regular_file_descriptor(fh)
            if fd is None:  # not a local file: spooled for the job
                fd = self._spooled(lambda spool: copy_stream(fh, spool))
        return {"ok": True}, fd

    def _op_size(self, request, _fd):
        key = request["key"]
        self._readable(key)
        return {"ok": True, "size": self.store.size(key)}, None

    def _op_list(self, request, _fd):
        prefix = normalize_prefix(request["prefix"])
        if not prefix:
            raise Denied("the job may not list the whole store")
        allowed = prefix.startswith(self.staging) or any(
            item.prefix.endswith("/") and prefix.startswith(item.prefix) for item in self.inputs
        )
        if not allowed:
            raise Denied(f"the job may not list {prefix!r}")
        keys = self.store.list(prefix)
        return {"ok": True}, self._spooled(
            lambda spool: spool.writelines(k.encode() + b"\n" for k in keys)
        )

    def _op_cached(self, request, _fd):
        from apps.datasets import shards

        key = request["key"]
        item = self._readable(key)
        if item is None or item.cache is None:
            raise Denied(f"{key!r} is not a dataset file")
        dataset_id, manifest = item.cache
        dataset = SimpleNamespace(pk=dataset_id, data_prefix=item.prefix, manifest=manifest)
        return {"ok": True, "path": str(shards.local_copy(dataset, key[len(item.prefix) :]))}, None

    def _op_put(self, request, fd):
        key = self._writable(request["key"])
        if fd is None:
            raise ValueError("put needs a file descriptor")
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("put needs a regular file")
        with os.fdopen(os.dup(fd), "rb") as fh:
            fh.seek(0)
            self.store.put_stream(key, fh, info.st_size, request.get("content_type"))
        return {"ok": True}, None

    def _op_delete(self, request, _fd):
        self.store.delete(self._writable(request["key"]))
        return {"ok": True}, None

    def _op_publish(self, request, _fd):
        key = self._writable(request["key"])
        target = self.kind.publish_artifact(self.job, key[len(self.staging) :])
        if not target:
            raise Denied(f"{key!r} cannot be published while the job runs")
        from apps.usage import accounting

        size = self.store.size(key)
        with self.store.open(key) as fh:
            self.store.put_stream(target, fh, size)
        # Not one of the job's artifacts (deleted with it): the owner's storage until whoever
        # holds it (the model) deletes it; the job's bytes written.
        accounting.record_published(self.job, target, size)
        self.store.delete(key)
        return {"ok": True, "key": target}, None


def _regular_file_descriptor(fh) -> int | None:
    """A new descriptor of ``fh`` at offset 0 when it is a regular file (never a socket)."""
    try:
        fd = os.dup(fh.fileno())
    except (AttributeError, io.UnsupportedOperation, OSError):
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
