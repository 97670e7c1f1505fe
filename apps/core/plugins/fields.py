"""Form fields plugin forms share, and confining server paths to the data roots."""

import os
import stat
from pathlib import Path
from typing import BinaryIO

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

#: Where Linux shows what each open file descriptor refers to.
_PROC_FDS = "/proc/self/fd"


def _probe_kernel_resolution() -> bool:
    """Whether ``O_PATH`` descriptors can be named and reopened through ``/proc/self/fd``
    (Linux with /proc mounted; tried once on this very file)."""
    if not hasattr(os, "O_PATH"):
        return False
    try:
        fd = os.open(__file__, os.O_PATH | os.O_CLOEXEC)
        try:
            link = f"{_PROC_FDS}/{fd}"
            if os.readlink(link) != os.path.realpath(__file__):
                return False
            with open(link, "rb") as fh:
                fh.read(1)
        finally:
            os.close(fd)
    except OSError:
        return False
    return True


_KERNEL_RESOLVES = _probe_kernel_resolution()


def _inside_roots(resolved: str) -> bool:
    for root in settings.DIGITS_SERVER_DATA_ROOTS:
        top = os.fspath(root)
        if resolved == top or resolved.startswith(top.rstrip(os.sep) + os.sep):
            return True
    return False


def _outside(path) -> ValidationError:
    roots = ", ".join(str(r) for r in settings.DIGITS_SERVER_DATA_ROOTS)
    return ValidationError(
        f"{path} is outside the folders this server may read from ({roots}; "
        "see DIGITS_SERVER_DATA_ROOTS).",
        code="outside_roots",
    )


def confine(path: str | Path) -> Path:
    """Resolve ``path`` and require it to lie under one of ``DIGITS_SERVER_DATA_ROOTS``."""
    # os.path and str, not Path.resolve / is_relative_to: pathlib's parsing cost as much
    # as the resolution itself.
    resolved = os.path.realpath(os.path.expanduser(os.fspath(path)))
    if _inside_roots(resolved):
        return Path(resolved)
    raise _outside(path)


def open_confined(path: str | Path) -> BinaryIO:
    """Open the regular file ``path`` for reading if it lies under ``DIGITS_SERVER_DATA_ROOTS``.

    ``confine`` and then ``open``, but the file checked is the file opened, and it is
    cheaper (what a dataset job does for every image). On Linux the kernel resolves the
    path once, into an ``O_PATH`` descriptor (which opens nothing: a device or FIFO is
    not touched); the descriptor's ``/proc/self/fd`` link names the file it found, which
    must lie inside the roots and be a regular file before the link is opened for
    reading. Raises ``ValidationError`` (outside the roots, not a regular file) or
    ``OSError`` (missing, unreadable).
    """
    name = os.path.expanduser(os.fspath(path))
    if not _KERNEL_RESOLVES:
        confined = confine(name)
        if not confined.is_file():
            if not confined.exists():
                raise FileNotFoundError(2, "No such file or directory", name)
            raise ValidationError(f"{path} is not a regular file.", code="not_a_file")
        return open(confined, "rb")  # noqa: SIM115 - the caller closes it
    fd = os.open(name, os.O_PATH | os.O_CLOEXEC)
    try:
        link = f"{_PROC_FDS}/{fd}"
        if not _inside_roots(os.readlink(link)):
            raise _outside(path)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValidationError(f"{path} is not a regular file.", code="not_a_file")
        return open(link, "rb")  # noqa: SIM115 - the caller closes it
    finally:
        os.close(fd)


class ServerFolderField(forms.CharField):
    """A folder on the server, inside the allowed data roots, that exists. Cleans to a str."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        path = confine(value)
        if not path.is_dir():
            raise ValidationError(f"Folder {value} does not exist on the server.", code="missing")
        return str(path)


class ServerFileField(forms.CharField):
    """A file on the server, inside the allowed data roots, that exists. Cleans to a str."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        path = confine(value)
        if not path.is_file():
            raise ValidationError(f"File {value} does not exist on the server.", code="missing")
        return str(path)
