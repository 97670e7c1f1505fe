"""The artifact store contract: bytes under '/'-separated keys, published atomically.

Keys are relative, '/'-separated strings such as ``jobs/12/model.keras``. A *prefix* names a
folder: ``"jobs/12"`` and ``"jobs/12/"`` both mean every key below ``jobs/12/`` (never
``jobs/120/...``), and ``""`` means the whole store. A key must not also be the folder of
another key (``a/b`` and ``a/b/c`` cannot coexist on disk); keep keys portable by never doing so.

Everything under ``_staging/`` is work in progress: ``list("")`` hides it, and only
``publish_prefix`` makes it visible elsewhere. See docs/decisions/0002-artifact-store.md.
"""

import abc
import errno
import io
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import IO

STAGING_PREFIX = "_staging/"


class ArtifactNotFound(FileNotFoundError, LookupError):
    """No artifact exists under ``key``."""

    def __init__(self, key: str) -> None:
        super().__init__(errno.ENOENT, "artifact not found", key)
        self.key = key


class StoreUnavailable(OSError):
    """The backend cannot be reached or written (raised by ``check()``)."""


def validate_key(key: str) -> str:
    """Return ``key`` unchanged, or raise ValueError if it is not a safe relative key.

    Empty, '.' and '..' segments are refused as well: the disk would collapse ``a//b`` and
    ``a/./b`` into ``a/b`` while S3 keeps them apart, so the backends would disagree.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"invalid artifact key {key!r}: empty")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid artifact key {key!r}: absolute, backslash or NUL")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid artifact key {key!r}: empty, '.' or '..' segment")
    return key


def normalize_prefix(prefix: str) -> str:
    """Return ``""`` for the whole store, else the folder prefix ending in one '/'."""
    if prefix == "":
        return ""
    return validate_key(prefix.removesuffix("/")) + "/"


def require_folder(prefix: str) -> str:
    """Like ``normalize_prefix``, but refuse ``""``: bulk deletes never take the whole store."""
    normalized = normalize_prefix(prefix)
    if not normalized:
        raise ValueError("an empty prefix names the whole store; refusing")
    return normalized


def copy_stream(src: IO[bytes], dst: IO[bytes], length: int = -1, chunk: int = 1 << 20) -> int:
    """Copy ``length`` bytes (or everything, when negative) from ``src`` to ``dst``."""
    copied = 0
    while length < 0 or copied < length:
        want = chunk if length < 0 else min(chunk, length - copied)
        data = src.read(want)
        if not data:
            break
        dst.write(data)
        copied += len(data)
    if length >= 0 and copied != length:
        # OSError, as minio raises for the same mistake on S3.
        raise OSError(f"stream ended after {copied} of {length} bytes")
    return copied


class ArtifactStore(abc.ABC):
    """Bytes under keys, with atomic publication. Build one with ``get_store()``."""

    # --- writing -------------------------------------------------------------------------------
    @abc.abstractmethod
    def put_stream(
        self, key: str, fileobj: IO[bytes], length: int = -1, content_type: str | None = None
    ) -> None:
        """Store ``length`` bytes read from ``fileobj`` (-1: read to EOF) under ``key``.

        Readers of ``key`` see the old object or the whole new one, never a part. A stream
        shorter than ``length`` raises OSError and stores nothing.
        """

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store ``data`` under ``key``, replacing any previous object."""
        self.put_stream(key, io.BytesIO(data), len(data), content_type)

    def put_file(
        self, key: str, path: str | os.PathLike[str], content_type: str | None = None
    ) -> None:
        """Store the content of the local file ``path`` under ``key``."""
        with open(path, "rb") as fh:
            self.put_stream(key, fh, os.fstat(fh.fileno()).st_size, content_type)

    @abc.abstractmethod
    def staged(
        self, key: str, content_type: str | None = None
    ) -> AbstractContextManager[IO[bytes]]:
        """Context manager yielding a writable binary file published at ``key`` on clean exit.

        Nothing is visible at ``key`` while the block runs; if it raises, the bytes are thrown
        away and ``key`` keeps its previous content (or stays absent).
        """

    # --- reading -------------------------------------------------------------------------------
    @abc.abstractmethod
    def open(self, key: str) -> IO[bytes]:
        """Open ``key`` for reading; use it as a context manager. Raises ArtifactNotFound."""

    def get(self, key: str) -> bytes:
        """Return the whole content of ``key``. Raises ArtifactNotFound."""
        with self.open(key) as fh:
            return fh.read()

    def stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the content of ``key`` in chunks of at most ``chunk_size`` bytes."""
        with self.open(key) as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size of ``key`` in bytes. Raises ArtifactNotFound."""

    def modified(self, key: str) -> datetime:
        """When ``key`` was last written (aware, UTC). Raises ArtifactNotFound.

        The orphan sweeper (``apps.jobs.sweeper``) ages work in progress by it.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot tell when a key was written")

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        try:
            self.size(key)
        except ArtifactNotFound:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key below the folder ``prefix``, recursively, in sorted order.

        ``list("")`` leaves out the ``_staging/`` area; name a staging prefix to see inside it.
        """
        prefix = normalize_prefix(prefix)
        for key in self._iter_keys(prefix):
            if prefix or not key.startswith(STAGING_PREFIX):
                yield key

    @abc.abstractmethod
    def url(
        self, key: str, expires: timedelta = timedelta(hours=1), filename: str | None = None
    ) -> str | None:
        """A time-limited URL a browser can GET ``key`` from, or None.

        None means the backend has no such URL (local disk): the web layer streams the bytes
        itself. ``filename`` asks for an ``attachment`` Content-Disposition. The key's
        existence is not checked.
        """

    # --- deleting and publishing ---------------------------------------------------------------
    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key below the folder ``prefix`` (not ``""``); return how many."""
        keys = list(self._iter_keys(require_folder(prefix)))
        for key in keys:
            self.delete(key)
        return len(keys)

    def publish_prefix(self, staging_prefix: str, final_prefix: str) -> int:
        """Move every key below ``staging_prefix`` to the same name below ``final_prefix``.

        Each object appears whole; the set appears one object at a time, so the caller makes
        it visible by updating the database row that points at ``final_prefix`` afterwards.
        Keys already below ``final_prefix`` are overwritten or kept, never deleted.
        Returns the number of objects moved.
        """
        src = _require_staging(staging_prefix)
        dst = require_folder(final_prefix)
        if dst.startswith(STAGING_PREFIX):
            raise ValueError(f"final prefix {final_prefix!r} must be a folder outside staging")
        # Listed up front: moving while paging through an S3 listing would skip keys.
        keys = list(self._iter_keys(src))
        for key in keys:
            self._move(key, dst + key[len(src) :])
        return len(keys)

    def discard_prefix(self, prefix: str) -> int:
        """Delete the staging folder ``prefix`` (an aborted job's output); return how many."""
        return self.delete_prefix(_require_staging(prefix))

    # --- operations ----------------------------------------------------------------------------
    @abc.abstractmethod
    def check(self) -> None:
        """Raise StoreUnavailable unless the backend is reachable and usable (readiness)."""

    # --- backend primitives --------------------------------------------------------------------
    @abc.abstractmethod
    def _iter_keys(self, prefix: str) -> Iterator[str]:
        """Every key starting with the normalized ``prefix``, staging included, sorted."""

    @abc.abstractmethod
    def _move(self, src: str, dst: str) -> None:
        """Replace ``dst`` with ``src`` and remove ``src``."""


def _require_staging(prefix: str) -> str:
    normalized = require_folder(prefix)
    if not normalized.startswith(STAGING_PREFIX) or normalized == STAGING_PREFIX:
        raise ValueError(f"{prefix!r} is not a folder inside {STAGING_PREFIX!r}")
    return normalized
