"""Files a user uploads for a job (dataset archives and lists, model files, images to classify).

Every upload is stored under ``uploads/<user id>/<random>/<name>``: the key says whose
upload it is, so a key a client names (``network.upload_key``, a cloned job's inputs) is
checked to be the caller's own before it is used. "Not yours" and "absent" are the same
error (``UnknownUpload``), so a key cannot be used to learn what others uploaded.

An upload takes its owner's storage while it is stored: ``upload_stored`` and
``upload_deleted`` tell the usage ledger (``apps.usage``, which core does not import);
delete uploads with ``delete_upload``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.dispatch import Signal

from apps.core.storage import get_store

PREFIX = "uploads/"
_KEY = re.compile(r"^uploads/(?P<owner>[0-9]+)/[0-9a-f]{32}/[^/]+$")

#: Sent once an upload is stored: ``key``, ``size`` (bytes), ``owner``.
upload_stored = Signal()
#: Sent once an upload is deleted: ``key``.
upload_deleted = Signal()


class UnknownUpload(Exception):
    """The key is not one of the caller's stored uploads (whether someone else's or absent)."""

    def __init__(self, message: str = "Unknown upload: upload the file again."):
        super().__init__(message)


def new_key(owner, name: str) -> str:
    """A fresh key for an upload of ``owner`` named ``name`` (slashes replaced)."""
    safe = name.replace("/", "_").replace("\\", "_")[:200] or "upload"
    return f"{PREFIX}{owner.pk}/{uuid.uuid4().hex}/{safe}"


def store_upload(upload: UploadedFile, owner) -> dict[str, Any]:
    """Put an uploaded file in the artifact store; the job receives this reference.

    Plugins read it in the job process with ``get_store().open(ref["upload_key"])``.
    """
    key = new_key(owner, upload.name)
    upload.seek(0)
    get_store().put_stream(key, upload, length=upload.size)
    upload_stored.send(store_upload, key=key, size=upload.size, owner=owner)
    return {"upload_key": key, "name": upload.name, "size": upload.size}


def store_bytes(data: bytes, name: str, owner) -> str:
    """Store ``data`` as an upload of ``owner``; its key."""
    key = new_key(owner, name)
    get_store().put(key, data)
    upload_stored.send(store_bytes, key=key, size=len(data), owner=owner)
    return key


def delete_upload(key: str) -> None:
    """Delete a stored upload (absent already is no error); it no longer takes storage."""
    get_store().delete(key)
    upload_deleted.send(delete_upload, key=key)


def owner_id_of(key: str) -> int | None:
    """The id of the user whose upload ``key`` is (by its form), or None for another key."""
    match = _KEY.match(key)
    return int(match["owner"]) if match else None


def is_owned(key: object, owner) -> bool:
    """Whether ``key`` names an upload of ``owner`` (by its form; says nothing of existence)."""
    match = _KEY.match(key) if isinstance(key, str) else None
    return match is not None and int(match["owner"]) == owner.pk


def check_owned(key: object, owner) -> str:
    """``key`` if it is one of ``owner``'s stored uploads; ``UnknownUpload`` otherwise.

    The form is checked before the store is asked, so another user's key is never looked up.
    """
    if not is_owned(key, owner) or not get_store().exists(key):
        raise UnknownUpload()
    return key


def upload_refs(options: dict[str, Any]) -> list[dict[str, Any]]:
    """The upload references (``{"upload_key", ...}``) among a job's options."""
    return [v for v in options.values() if isinstance(v, dict) and "upload_key" in v]
