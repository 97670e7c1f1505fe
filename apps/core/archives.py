"""Extracting an uploaded zip or tar archive, after checking every member (any data plugin).

Nothing is written until the whole member list has passed: a member whose path
has a ``..`` component or is absolute, a link (symbolic or hard), a device, a
FIFO or any other special member, more members than ``max_members`` or more
uncompressed bytes than ``max_bytes`` in all refuses the archive with an
``ArchiveRefused`` naming the member. Files are then written by this module
(never ``extractall``), each below the target folder, with the archive's
permissions and owners ignored.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

DEFAULT_MAX_BYTES = 10 * 2**30
DEFAULT_MAX_MEMBERS = 1_000_000
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20


class ArchiveRefused(ValueError):
    """The archive is unsafe or too large to extract; the message names the member."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS

    @classmethod
    def from_settings(cls) -> Limits:
        """``DIGITS_MAX_ARCHIVE_BYTES`` and ``DIGITS_MAX_ARCHIVE_MEMBERS``, or the defaults."""
        from django.conf import settings

        return cls(
            max_bytes=int(getattr(settings, "DIGITS_MAX_ARCHIVE_BYTES", DEFAULT_MAX_BYTES)),
            max_members=int(getattr(settings, "DIGITS_MAX_ARCHIVE_MEMBERS", DEFAULT_MAX_MEMBERS)),
        )


def is_archive(fileobj: IO[bytes]) -> bool:
    """Whether ``fileobj`` (seekable) starts like a zip or a (compressed) tar archive."""
    try:
        fileobj.seek(0)
        if zipfile.is_zipfile(fileobj):
            return True
        fileobj.seek(0)
        return tarfile.is_tarfile(fileobj)
    except (OSError, EOFError):
        return False
    finally:
        fileobj.seek(0)


def member_parts(archive: str, member: str) -> tuple[str, ...]:
    """The path components of ``member``; refuse absolute paths and ``..`` components."""
    name = member.replace("\\", "/")
    if "\x00" in name:
        raise ArchiveRefused(f"{archive}: member {member!r} has a NUL byte in its name; refused")
    if name.startswith("/") or _DRIVE.match(name):
        raise ArchiveRefused(f"{archive}: member {member!r} has an absolute path; refused")
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise ArchiveRefused(f"{archive}: member {member!r} has a '..' path component; refused")
    return parts


class _Budget:
    def __init__(self, archive: str, limits: Limits):
        self.archive, self.limits = archive, limits
        self.members = 0
        self.bytes = 0

    def count(self, member: str, size: int) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveRefused(
                f"{self.archive}: more than {self.limits.max_members} members "
                f"(DIGITS_MAX_ARCHIVE_MEMBERS) at member {member!r}; refused"
            )
        self.bytes += max(size, 0)
        if self.bytes > self.limits.max_bytes:
            raise ArchiveRefused(
                f"{self.archive}: uncompressed size exceeds {self.limits.max_bytes} bytes "
                f"(DIGITS_MAX_ARCHIVE_BYTES) at member {member!r}; refused"
            )


def _zip_kind(info: zipfile.ZipInfo) -> str | None:
    """What a zip member is, from its Unix mode when the archiver recorded one."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if info.create_system != 3 or kind == 0:  # not made on Unix, or no type bits
        return "dir" if info.is_dir() else "file"
    if stat.S_ISREG(kind):
        return "file"
    if stat.S_ISDIR(kind):
        return "dir"
    if stat.S_ISLNK(kind):
        return "a symbolic link"
    if stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
        return "a device"
    if stat.S_ISFIFO(kind):
        return "a FIFO"
    return "a special file"


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.isfile():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a FIFO"
    return "a special member"


def _check(archive: str, member: str, kind: str, size: int, budget: _Budget):
    """``(path components, kind)`` of an acceptable member; ``ArchiveRefused`` otherwise."""
    parts = member_parts(archive, member)
    if kind not in ("file", "dir"):
        raise ArchiveRefused(f"{archive}: member {member!r} is {kind}; refused")
    budget.count(member, size if kind == "file" else 0)
    return parts, kind


def _write(target: Path, parts: tuple[str, ...], src: IO[bytes], size: int, name: str) -> None:
    dest = target.joinpath(*parts)
    if not dest.resolve().is_relative_to(target):  # belt and braces: parts are already checked
        raise ArchiveRefused(f"member {name!r} would be written outside the extraction folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(dest, "wb") as out:
        while chunk := src.read(min(_CHUNK, size - written + 1)):
            written += len(chunk)
            if written > size:
                raise ArchiveRefused(f"member {name!r} holds more bytes than its header says")
            out.write(chunk)


def _extract_zip(path: Path, archive: str, target: Path, limits: Limits) -> int:
    budget = _Budget(archive, limits)
    with zipfile.ZipFile(path) as zf:
        checked = [
            (info, _check(archive, info.filename, _zip_kind(info), info.file_size, budget))
            for info in zf.infolist()
        ]
        for info, (parts, kind) in checked:
            if not parts:
                continue
            if kind == "dir":
                target.joinpath(*parts).mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as src:
                _write(target, parts, src, info.file_size, info.filename)
    return budget.members


def _extract_tar(path: Path, archive: str, target: Path, limits: Limits) -> int:
    budget = _Budget(archive, limits)
    with tarfile.open(path, "r:*") as tf:
        checked = []
        while (member := tf.next()) is not None:  # stops reading at the first refusal
            checked.append(
                (member, _check(archive, member.name, _tar_kind(member), member.size, budget))
            )
        for member, (parts, kind) in checked:
            if not parts:
                continue
            if kind == "dir":
                target.joinpath(*parts).mkdir(parents=True, exist_ok=True)
                continue
            src = tf.extractfile(member)
            _write(target, parts, src, member.size, member.name)
    return budget.members


def extract_archive(path: Path, archive: str, target: Path, limits: Limits) -> int:
    """Check every member of the zip or tar file ``path``, then extract it into ``target``.

    ``archive`` is the name messages use (the uploaded file's name). Returns the
    number of members. Raises ``ArchiveRefused`` for an unsafe or too large archive
    (``target`` then holds nothing of it) and for one that is not a readable archive.
    """
    target = Path(target).resolve()
    target.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(path):
            return _extract_zip(path, archive, target, limits)
        if tarfile.is_tarfile(path):
            return _extract_tar(path, archive, target, limits)
    except ArchiveRefused:
        _empty(target)
        raise
    except (zipfile.BadZipFile, tarfile.TarError, RuntimeError, OSError, EOFError) as exc:
        _empty(target)
        raise ArchiveRefused(f"{archive}: cannot be extracted ({exc})") from None
    raise ArchiveRefused(f"{archive} is neither a zip nor a tar archive")


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            os.unlink(child)
