"""The image classification dataset type (DIGITS' "Classification" image dataset).

Entries are ``sources.Entry`` values — where an image is and its class index — listed
once for all stages by ``plan.Planner`` on the first ``itemize_entries`` call (in the
job process, which is also where an uploaded archive is extracted, into a temporary
folder under ``TMPDIR`` removed when the job process exits). ``encode_entry`` reads,
converts and resizes one image in a pool process.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from PIL import Image

from apps.core import images
from apps.core.plugins import INFERENCE, ConfinedReader, DataIngestion, EntryError
from apps.core.storage import ArtifactNotFound, get_store
from digits_imageclass.images import COLOR, open_image
from digits_imageclass.plan import Plan, Planner
from digits_imageclass.resize import NOISE_MODES, SQUASH, resize_image
from digits_imageclass.sources import SERVER, STORE, Entry

#: An image file larger than this is refused before it is read into memory.
MAX_IMAGE_FILE_BYTES = images.MAX_FILE_BYTES


class ImageClassification(DataIngestion):
    """Images in one folder per class → ``(H, W, C)`` uint8 features and a class index."""

    category = "Images"

    def __init__(self, is_inference_db: bool = False, **kwargs: Any):
        super().__init__(is_inference_db=is_inference_db, **kwargs)
        self._plan: Plan | None = None
        self._workdir: str | None = None
        self._reader: tuple[int, ConfinedReader] | None = None  # (pid, reader)

    @classmethod
    def get_id(cls):
        return "image-classification"

    @classmethod
    def get_title(cls):
        return "Image classification"

    @classmethod
    def get_dataset_form(cls):
        from digits_imageclass.forms import ImageClassificationForm

        return ImageClassificationForm

    @classmethod
    def get_dataset_template(cls, form):
        from digits_imageclass.forms import template_context

        return "digits_imageclass/dataset_template.html", template_context(form)

    # --- work ---------------------------------------------------------------------------
    def itemize_entries(self, stage: str) -> list[Entry | EntryError]:
        if stage == INFERENCE:
            return []
        if self._plan is None:
            self._plan = Planner(self.userdata, self._make_workdir).plan()
        return list(self._plan.stages[stage])

    def _make_workdir(self) -> Path:
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix="digits-imageclass-")
            atexit.register(_remove_tree, self._workdir, os.getpid())
        return Path(self._workdir)

    def encode_entry(self, entry: Entry) -> tuple[Image.Image, int]:
        """Read, convert and resize one image: ``(image, label)``, the image ``height`` ×
        ``width`` in mode ``L`` (grayscale) or ``RGB`` (color).

        A Pillow image, not an array: the job encodes it as it is (png, jpg) — the array
        round trip cost more than the resize for small images.
        """
        options = self.userdata
        image_type = options.get("image_type") or COLOR
        if entry.kind == STORE:
            image = _load_stored(entry, image_type)
        elif entry.kind == SERVER:
            image = open_image(io.BytesIO(self._read_server_file(entry)), entry.name, image_type)
        else:
            image = open_image(entry.location, entry.name, image_type)
        mode = options.get("resize_mode") or SQUASH
        rng = None
        if mode in NOISE_MODES:
            # Noise borders are drawn per image from the seed: a rebuild gives the same bytes.
            rng = np.random.default_rng(
                [int(options.get("seed") or 0), zlib.crc32(entry.name.encode())]
            )
        resized = resize_image(
            image, int(options.get("height") or 256), int(options.get("width") or 256), mode, rng
        )
        return resized, entry.label

    # --- storage and presentation ---------------------------------------------------------
    def get_encoding(self) -> str:
        return self.userdata.get("encoding") or "png"

    def wants_mean_image(self) -> bool:
        return bool(self.userdata.get("mean_image", True))

    def get_label_names(self) -> list[str] | None:
        if self._plan is not None:
            return list(self._plan.names)
        return list(self.userdata.get("labels") or []) or None

    def _read_server_file(self, entry: Entry) -> bytes:
        """The bytes of the server file of ``entry``, read only if it lies inside the data roots.

        One reader per process (pool processes are forked from the job process): it keeps
        the checked folders open, so an image costs no more system calls than a plain read.
        """
        if self._reader is None or self._reader[0] != os.getpid():
            self._reader = (os.getpid(), ConfinedReader(MAX_IMAGE_FILE_BYTES))
        return _read_confined(self._reader[1], entry)


def _read_confined(reader: ConfinedReader, entry: Entry) -> bytes:
    try:
        return reader.read(entry.location)
    except ValidationError as exc:
        raise EntryError(f"{entry.name}: {' '.join(exc.messages)}") from None
    except FileNotFoundError:
        raise EntryError(f"{entry.name}: no such file") from None
    except OSError as exc:
        raise EntryError(f"{entry.name} cannot be opened ({exc.strerror or exc})") from None


def _load_stored(entry: Entry, image_type: str) -> Image.Image:
    store = get_store()
    try:
        size = store.size(entry.location)
        if size > MAX_IMAGE_FILE_BYTES:
            raise EntryError(f"{entry.name}: {size} bytes, more than an image may have")
        data = store.get(entry.location)
    except ArtifactNotFound:
        raise EntryError(f"{entry.name}: no longer in the store") from None
    return open_image(io.BytesIO(data), entry.name, image_type)


def _remove_tree(path: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # never from a forked pool process
        shutil.rmtree(path, ignore_errors=True)
