"""Artifacts as files below one directory: the embedded default, nothing to run."""

import contextlib
import os
import stat
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from .base import (
    STAGING_PREFIX,
    ArtifactNotFound,
    ArtifactStore,
    StoreUnavailable,
    copy_stream,
    validate_key,
)

# What the disk says when a key holds no object: missing, a folder, or below a file.
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class LocalStore(ArtifactStore):
    """Keys are paths below ``root``. Writes land in a temp file under ``root/_staging``, on
    the same filesystem, and appear by ``os.replace``, which is atomic."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # Resolved without touching the disk: building a store has no side effects.
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def put_stream(
        self, key: str, fileobj: IO[bytes], length: int = -1, content_type: str | None = None
    ) -> None:
        with self.staged(key, content_type) as out:
            copy_stream(fileobj, out, length)

    @contextlib.contextmanager
    def staged(self, key: str, content_type: str | None = None) -> Iterator[IO[bytes]]:
        """See ArtifactStore.staged. The disk keeps no content type; it is ignored."""
        dest = self._path(key)
        tmp = self._staging_dir() / f"{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "xb") as out:
                yield out
                out.flush()
                # Without it a crash soon after the rename can leave an empty file in place.
                os.fsync(out.fileno())
            self._replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def open(self, key: str) -> IO[bytes]:
        path = self._path(key)
        try:
            return open(path, "rb")  # noqa: SIM115 - the caller closes it
        except _MISSING:
            raise ArtifactNotFound(key) from None

    def size(self, key: str) -> int:
        try:
            st = self._path(key).stat()
        except _MISSING:
            raise ArtifactNotFound(key) from None
        if not stat.S_ISREG(st.st_mode):
            raise ArtifactNotFound(key)
        return st.st_size

    def modified(self, key: str) -> datetime:
        try:
            mtime = self._path(key).stat().st_mtime
        except _MISSING:
            raise ArtifactNotFound(key) from None
        return datetime.fromtimestamp(mtime, UTC)

    def url(
        self, key: str, expires: timedelta = timedelta(hours=1), filename: str | None = None
    ) -> None:
        """Always None: files on the server's disk have no URL; the web layer streams them."""
        validate_key(key)
        return None

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except _MISSING:
            return
        self._prune(path.parent)

    def check(self) -> None:
        try:
            with tempfile.TemporaryFile(dir=self._staging_dir()):
                pass
        except OSError as exc:
            raise StoreUnavailable(f"artifact root {self.root} is not writable: {exc}") from exc

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix.removesuffix("/")) if prefix else self.root
        keys = []
        for dirpath, _dirnames, filenames in os.walk(base):
            folder = Path(dirpath).relative_to(self.root).as_posix()
            keys.extend(name if folder == "." else f"{folder}/{name}" for name in filenames)
        # Sorted as whole strings, which is S3's order: "a/b-c" comes before "a/b/c".
        return iter(sorted(keys))

    def _move(self, src: str, dst: str) -> None:
        src_path = self._path(src)
        self._replace(src_path, self._path(dst))
        self._prune(src_path.parent)

    def _path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        # Resolving follows symlinks; one below the root must not lead out of it.
        if path == self.root or not path.is_relative_to(self.root):
            raise ValueError(f"invalid artifact key {key!r}: outside the artifact root")
        return path

    def _staging_dir(self) -> Path:
        folder = self.root / STAGING_PREFIX
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _replace(self, src: Path, dest: Path) -> None:
        # A concurrent delete may prune dest's empty folder between mkdir and replace.
        for attempt in range(2):
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(src, dest)
                return
            except FileNotFoundError:
                if attempt or not src.exists():
                    raise

    def _prune(self, folder: Path) -> None:
        # Empty folders would otherwise pile up, e.g. one per published job under _staging/.
        # The staging folder itself stays: another write (a job's, the worker's) may have just
        # made sure of it and be about to open its temp file there.
        staging = self.root / STAGING_PREFIX
        while folder not in (self.root, staging) and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty, or removed meanwhile: stop here
                return
            folder = folder.parent
