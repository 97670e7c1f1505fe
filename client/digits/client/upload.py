"""Uploads: a multipart body streamed from disk with progress, and folders zipped for it.

``requests`` builds a multipart body in memory; an archive of a few GB must not be. A
:class:`MultipartBody` knows its length up front (so the server's size limit answers
before anything is sent twice) and reads each file in chunks as the socket takes them.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

#: ``progress(sent_bytes, total_bytes)``, called as the body is sent.
Progress = Callable[[int, int], None]

CHUNK = 1 << 20


class MultipartBody:
    def __init__(
        self,
        fields: dict[str, str],
        files: dict[str, tuple[str, IO[bytes]]],
        progress: Progress | None = None,
    ):
        self.boundary = uuid.uuid4().hex
        self.progress = progress
        self._parts: list[bytes | tuple[IO[bytes], int]] = []
        for name, value in fields.items():
            self._parts.append(self._header(name) + b"\r\n" + value.encode() + b"\r\n")
        for name, (filename, stream) in files.items():
            size = os.fstat(stream.fileno()).st_size - stream.tell()
            self._parts.append(
                self._header(name, filename) + b"Content-Type: application/octet-stream\r\n\r\n"
            )
            self._parts.append((stream, size))
            self._parts.append(b"\r\n")
        self._parts.append(f"--{self.boundary}--\r\n".encode())
        self.length = sum(p if isinstance(p, int) else len(p) for p in self._sizes())

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _header(self, name: str, filename: str | None = None) -> bytes:
        disposition = f'form-data; name="{_quote(name)}"'
        if filename is not None:
            disposition += f'; filename="{_quote(filename)}"'
        return f"--{self.boundary}\r\nContent-Disposition: {disposition}\r\n".encode()

    def _sizes(self):
        for part in self._parts:
            yield part[1] if isinstance(part, tuple) else part

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for part in self._parts:
            chunks = _read(*part) if isinstance(part, tuple) else [part]
            for chunk in chunks:
                sent += len(chunk)
                if self.progress:
                    self.progress(sent, self.length)
                yield chunk


def _read(stream: IO[bytes], size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            raise OSError(f"{getattr(stream, 'name', 'a file')} shrank while being uploaded")
        left -= len(chunk)
        yield chunk


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


def zip_folder(folder: str | os.PathLike) -> IO[bytes]:
    """``folder`` as a ZIP archive in a temporary file (deleted when closed), its
    contents at the archive's top level: ``cat/1.png`` for ``folder/cat/1.png``."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    out = tempfile.TemporaryFile(suffix=".zip")  # noqa: SIM115  returned open
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                archive.write(path, path.relative_to(root).as_posix())
    out.seek(0)
    return out
