"""Helpers of the Sunnybrook build tests."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

from apps.datasets.models import Dataset
from tests.conftest import wait_until


def finished(pk):
    """The dataset once its build has ended (ready, error or aborted)."""
    return wait_until(
        lambda: Dataset.objects.exclude(status="building").filter(pk=pk).first(), timeout=120
    )


def post_json(api, options, name="LV", **extra):
    """Create an ``image-sunnybrook`` dataset through the REST API; its id."""
    body = {"type": "image-sunnybrook", "name": name, "options": options, **extra}
    reply = api.post("/api/v1/datasets/", body, format="json")
    assert reply.status_code == 201, reply.content
    return reply.json()["id"]


def post_multipart(api, options, files, name="LV", **extra):
    """The same with uploaded files, as a multipart request (options as a JSON part)."""
    data = {"type": "image-sunnybrook", "name": name, "options": json.dumps(options), **extra}
    reply = api.post("/api/v1/datasets/", {**data, **files}, format="multipart")
    assert reply.status_code == 201, reply.content
    return reply.json()["id"]


def archive_members(tree, broken_contour=False):
    """The tree as the challenge download lays it out, plus an archiver's debris."""
    members = [
        (f"SCD_DeidentifiedImages/{p.relative_to(tree.images).as_posix()}", p.read_bytes())
        for p in sorted(tree.images.rglob("*.dcm"))
    ]
    members += [
        (f"SCD_ManualContours/{p.relative_to(tree.contours).as_posix()}", p.read_bytes())
        for p in sorted(tree.contours.rglob("*.txt"))
    ]
    if broken_contour:
        name = "SCD_ManualContours/SC-N-02/contours-manual/IRCCI-expert/"
        name += "IM-0001-0021-icontour-manual.txt"
        members = [(n, b"1 1\n2 2\n3 x\n" if n == name else d) for n, d in members]
    return [*members, ("__MACOSX/SCD_ManualContours/._SC-N-02", b"junk")]


def make_zip(members) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return out.getvalue()


def make_tar(members, symlink=None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
    return out.getvalue()
