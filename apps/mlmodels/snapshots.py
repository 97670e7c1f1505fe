"""Training snapshots in the artifact store: one tar object per saved epoch.

``models/<model id>/snapshots/epoch-0005.tar`` holds ``model.keras`` (the whole model:
its architecture, weights and optimizer state, for download and inference) and
``state.json``. ``model.keras`` is a zip whose ``model.weights.h5`` (weights and
optimizer state) is what resuming into a rebuilt architecture, and inference of custom
network code, load (``weights_file``). Snapshots written before 2026-12 also hold that
file beside it and an ``optimizer.npz``: both are still read. One object per snapshot
makes writing it atomic: a half-written snapshot never exists.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

from apps.core.storage import get_store

_EPOCH = re.compile(r"epoch-(\d+)\.tar$")


def prefix(model_id: int) -> str:
    return f"models/{model_id}/snapshots/"


def key(model_id: int, epoch: int) -> str:
    return f"{prefix(model_id)}epoch-{epoch:04d}.tar"


def epochs(model_id: int) -> list[int]:
    """Saved epochs, ascending."""
    found = []
    for k in get_store().list(prefix(model_id)):
        match = _EPOCH.search(k)
        if match:
            found.append(int(match.group(1)))
    return sorted(found)


def save(model_id: int, epoch: int, folder: Path, staging_prefix: str) -> str:
    """Pack the files of ``folder`` into the epoch's snapshot object; return its key.

    The job writes it below its staging prefix and asks its worker to publish it
    (``TrainModel.publish_artifact``): a job can write nothing else, and a killed job
    still leaves every snapshot it finished.
    """
    store = get_store()
    staged = f"{staging_prefix}snapshots/epoch-{epoch:04d}.tar"
    with (
        store.staged(staged, content_type="application/x-tar") as out,
        tarfile.open(fileobj=out, mode="w") as tar,
    ):
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    publish = getattr(store, "publish", None)
    if publish is not None:
        return publish(staged)
    # Outside a job process (benchmarks): the store is the real one.
    final = key(model_id, epoch)
    with store.open(staged) as fh:
        store.put_stream(final, fh, store.size(staged), content_type="application/x-tar")
    store.delete(staged)
    return final


def extract(model_id: int, epoch: int, folder: Path) -> dict:
    """Unpack a snapshot into ``folder`` (only its known regular files); return its state."""
    folder.mkdir(parents=True, exist_ok=True)
    with (
        get_store().open(key(model_id, epoch)) as fh,
        tarfile.open(fileobj=io.BytesIO(fh.read())) as tar,
    ):
        for member in tar.getmembers():
            if member.isfile() and "/" not in member.name and not member.name.startswith("."):
                (folder / member.name).write_bytes(tar.extractfile(member).read())
    return json.loads((folder / "state.json").read_text())


#: The weights (and optimizer state) of a snapshot, inside its ``model.keras``.
WEIGHTS = "model.weights.h5"


def weights_file(folder: Path) -> Path:
    """The ``model.weights.h5`` of a snapshot unpacked into ``folder``: the file itself in an
    older snapshot, else taken out of its ``model.keras`` (which holds it).

    Keras stores the members uncompressed, and so does every snapshot a training job
    writes; a compressed member (the job process runs the user's code, which could write
    the snapshot) is refused, so what is unpacked is never larger than the snapshot."""
    path = folder / WEIGHTS
    if not path.exists():
        with zipfile.ZipFile(folder / "model.keras") as archive:
            info = archive.getinfo(WEIGHTS)
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                raise ValueError("The snapshot's model.keras is not as a training job writes it.")
            with archive.open(info) as inner, path.open("wb") as out:
                shutil.copyfileobj(inner, out)
    return path


def delete_all(model_id: int) -> int:
    return get_store().delete_prefix(prefix(model_id))
