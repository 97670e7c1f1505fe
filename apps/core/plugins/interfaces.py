"""The classes plugin authors subclass, with DIGITS' method names.

Arrays exchanged with the platform use one layout:

- features: ``numpy.ndarray`` of shape ``(height, width, channels)`` (HWC),
  dtype ``uint8`` (or ``float32`` for data that is not an image), with
  ``channels`` 1 (grayscale) or 3 (RGB);
- labels: an ``int`` class index, or an ``ndarray`` of shape ``(height, width)``
  and dtype ``uint8`` holding a class index per pixel (segmentation masks).

Every entry of a dataset has the same feature shape and label shape.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from django import forms
from PIL import Image

TRAIN, VAL, TEST = "train", "val", "test"
STAGES = (TRAIN, VAL, TEST)
INFERENCE = "inference"

#: Default palette for label overlays: background transparent, then distinct colours.
DEFAULT_PALETTE = [
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60),
]  # fmt: skip


class EntryError(Exception):
    """An entry that cannot be encoded; the message should name the file at fault."""


@dataclass(frozen=True)
class DatasetRecord:
    """An inference entry that is entry ``index`` of ``stage`` of the model's dataset.

    ``itemize_entries("inference")`` may return it (e.g. for a "validation record" field
    of the inference form): the platform reads the entry's features and label from the
    built dataset instead of calling ``encode_entry``, whatever the dataset's source was.
    """

    stage: str
    index: int


class DataIngestion:
    """A dataset type. DIGITS' ``DataIngestionInterface``, on Django forms and templates.

    The platform creates an instance with the cleaned data of the dataset form
    as keyword arguments (``is_inference_db=True`` when building inference
    input), calls ``itemize_entries(stage)`` once per stage and
    ``encode_entry(entry)`` for every entry, in parallel worker processes of the
    dataset job — never in a web request. Instances must therefore be
    picklable and ``encode_entry`` free of shared mutable state.
    """

    #: Category on the new-dataset menu, e.g. "Images".
    category: ClassVar[str] = "Other"

    def __init__(self, is_inference_db: bool = False, **kwargs: Any):
        self.is_inference_db = is_inference_db
        self.userdata = kwargs

    # --- identity (class methods in place of DIGITS' static methods) -------------------
    @classmethod
    def get_id(cls) -> str:
        """A stable identifier, unique among installed plugins (e.g. ``"image-sunnybrook"``)."""
        raise NotImplementedError

    @classmethod
    def get_title(cls) -> str:
        """The name shown to users (e.g. ``"Sunnybrook LV segmentation"``)."""
        raise NotImplementedError

    @classmethod
    def get_category(cls) -> str:
        return cls.category

    @classmethod
    def get_task(cls) -> str:
        """What the labels mean, and so how the platform trains on, evaluates and shows
        the dataset: ``"classification"`` (an ``int`` class per entry, the default) or
        ``"segmentation"`` (a class per pixel); ``"detection"`` and ``"regression"`` are
        reserved names for tasks to come. Recorded in the manifest as ``task``; see
        ``apps.mlmodels.tasks``."""
        return "classification"

    # --- forms and templates --------------------------------------------------------------
    @classmethod
    def get_dataset_form(cls) -> type[forms.Form]:
        """The Django form class of the dataset options; its cleaned data become kwargs."""
        raise NotImplementedError

    @classmethod
    def get_dataset_template(cls, form: forms.Form) -> tuple[str, dict[str, Any]]:
        """``(template name, context)`` rendering ``form`` on the new-dataset page."""
        return "datasets/generic_dataset_form.html", {"form": form}

    @classmethod
    def get_inference_form(cls) -> type[forms.Form] | None:
        """The Django form class used to pick inference input, or None.

        A model's Test page (and ``POST /api/v1/models/<id>/infer/``) validates it in the
        web process, then creates the type with the dataset's options updated by the
        form's cleaned data (uploads are Django ``UploadedFile`` objects) and
        ``is_inference_db=True``, and encodes ``itemize_entries("inference")`` there:
        keep the work bounded (size limits) — it runs on a small thread pool with a
        time limit. An entry's label, when the form gave one, is the ground truth the
        view compares the prediction with (``None`` otherwise).
        """
        return None

    @classmethod
    def get_inference_template(cls, form: forms.Form) -> tuple[str, dict[str, Any]]:
        return "datasets/generic_dataset_form.html", {"form": form}

    def get_user_data(self) -> dict[str, Any]:
        """The options this instance was created with (the form's cleaned data)."""
        return self.userdata

    # --- work --------------------------------------------------------------------------
    def itemize_entries(self, stage: str) -> list[Any]:
        """The entries of ``stage`` (train, val, test or inference): small picklable values."""
        raise NotImplementedError

    def encode_entry(self, entry: Any) -> tuple[np.ndarray, int | np.ndarray]:
        """Turn one entry into ``(features HWC, label)``; raise ``EntryError`` naming the file.

        An 8-bit image may be returned as a Pillow image in mode ``L`` or ``RGB`` instead
        of an array: with a ``png``/``jpg``/``none`` encoding it is stored without an array
        round trip.
        """
        raise NotImplementedError

    def get_notes(self) -> list[str]:
        """Sentences for the dataset page about how the entries were chosen (e.g. how the
        stages were drawn), asked after ``itemize_entries``; kept as ``manifest["notes"]``."""
        return []

    # --- storage ------------------------------------------------------------------------
    def get_encoding(self) -> str | None:
        """How entries are stored: ``None`` for NumPy shards of decoded arrays, or
        ``"png"``, ``"jpg"`` or ``"none"`` (raw pixels) for TFRecord shards of images.

        Images must then be ``uint8`` HWC with 1 or 3 channels (``png`` also takes
        ``uint16``), and labels class indices.
        """
        return None

    def wants_mean_image(self) -> bool:
        """Whether the job computes the mean image of the train stage (``mean.npy``/``mean.png``)."""
        return False

    # --- presentation ---------------------------------------------------------------------
    def get_label_names(self) -> list[str] | None:
        """Names of the label classes, index-aligned, if known."""
        return None

    def get_palette(self) -> list[tuple[int, int, int]]:
        """RGB colour of each class for overlays; index 0 (background) is not drawn."""
        return DEFAULT_PALETTE

    def render_entry(self, features: np.ndarray, label: Any) -> Image.Image:
        """A picture of one encoded entry for the explore page (mask labels overlaid)."""
        image = features_to_image(features)
        if isinstance(label, np.ndarray) and label.ndim == 2:
            image = overlay_mask(image, label, self.get_palette())
        return image


class Visualization:
    """A view of a model's output for one inference input (DIGITS' ``VisualizationInterface``).

    A view plugin is a pip package with an entry point in DIGITS' group
    ``digits.plugins.view`` naming its subclass (``name = "my_view.view:MyView"``); its
    package is the view's Django app (templates under ``templates/<package>/``). The
    platform creates one instance per inference request with the model's dataset and the
    cleaned data of ``get_config_form()`` as keyword arguments (``self.config``), calls
    ``process_data`` for each input, then renders ``get_header_template()`` once and
    ``get_view_template(data)`` for each processed input. All of it runs in the web
    process: keep ``process_data`` to array work bounded by the input's size.
    """

    #: The tasks whose outputs this view shows (``"classification"``, ``"segmentation"``,
    #: ...); empty for any task. The test page lists only the views that fit the model.
    tasks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dataset=None, **kwargs: Any):
        self.dataset = dataset
        self.config = kwargs

    @classmethod
    def get_id(cls) -> str:
        """A stable identifier, unique among installed views (e.g. ``"image-segmentation"``)."""
        raise NotImplementedError

    @classmethod
    def get_title(cls) -> str:
        raise NotImplementedError

    @classmethod
    def get_django_app(cls) -> str | None:
        """The view's Django app: by default the top-level package of the class's module."""
        return cls.__module__.split(".")[0]

    @classmethod
    def get_config_form(cls) -> type[forms.Form] | None:
        """The Django form class of the view's options, or None."""
        return None

    @classmethod
    def get_config_template(cls, form: forms.Form) -> tuple[str, dict[str, Any]]:
        return "datasets/generic_dataset_form.html", {"form": form}

    def get_header_template(self) -> tuple[str | None, dict[str, Any]]:
        """A template shown once above all outputs (e.g. a legend), or ``(None, {})``."""
        return None, {}

    def get_view_template(self, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """``(template name, context)`` showing one processed output."""
        raise NotImplementedError

    def process_data(
        self,
        input_id: str,
        input_data: np.ndarray,
        output_data: dict[str, Any],
        ground_truth: Any = None,
    ) -> dict[str, Any]:
        """Turn one inference input and the network's outputs into the view's data.

        ``input_data``: the input as the network received it, HWC. ``output_data``: the
        network's raw output for this input under ``"output"`` (e.g. ``(classes,)``
        probabilities or ``(H, W, classes)`` per-pixel softmax) and what the model's task
        made of it (segmentation: ``"mask"``, ``(H, W)`` uint8 class indices, and
        ``"pixel_counts"``; classification: ``"predictions"``). ``ground_truth``: the
        input's label when the inference form gave one (a class index or an ``(H, W)``
        mask), else None.
        """
        raise NotImplementedError

    # --- what the dataset says about the classes --------------------------------------------
    def get_label_names(self) -> list[str] | None:
        """The class names of the model's dataset, index-aligned, if known."""
        manifest = getattr(self.dataset, "manifest", None) or {}
        return manifest.get("label_names")

    def get_palette(self) -> list[tuple[int, int, int]]:
        """The class colours of the dataset's type (``DataIngestion.get_palette``)."""
        palette = getattr(self.dataset, "palette", None)
        return palette() if callable(palette) else DEFAULT_PALETTE


def features_to_image(features: np.ndarray) -> Image.Image:
    """An 8-bit PIL image from HWC features (float features are rescaled to 0..255)."""
    array = np.asarray(features)
    if array.dtype != np.uint8:
        low, high = float(array.min()), float(array.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        array = ((array - low) * scale).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(array).convert("RGB")


def mask_to_image(mask: np.ndarray, palette) -> Image.Image:
    """A mask alone: each class in its palette colour (background black)."""
    colours = np.zeros((max(len(palette), int(mask.max()) + 1), 3), dtype=np.uint8)
    for index, colour in enumerate(palette):
        colours[index] = colour
    colours[0] = (0, 0, 0)
    return Image.fromarray(colours[mask])


def overlay_mask(image: Image.Image, mask: np.ndarray, palette, alpha: float = 0.45) -> Image.Image:
    """Blend class colours over ``image`` where ``mask`` is not background (0)."""
    colours = np.zeros((max(len(palette), int(mask.max()) + 1), 3), dtype=np.uint8)
    for index, colour in enumerate(palette):
        colours[index] = colour
    base = np.asarray(image, dtype=np.float32)
    tint = colours[mask].astype(np.float32)
    blend = np.where((mask > 0)[..., None], base * (1 - alpha) + tint * alpha, base)
    return Image.fromarray(blend.astype(np.uint8))


def colour_mask(mask: np.ndarray, palette) -> Image.Image:
    """An RGBA picture of ``mask``: each class in its palette colour, background transparent."""
    mask = np.asarray(mask)
    colours = np.zeros((max(len(palette), int(mask.max(initial=0)) + 1), 4), dtype=np.uint8)
    for index, colour in enumerate(palette):
        colours[index] = (*colour, 255)
    colours[0, 3] = 0
    return Image.fromarray(colours[mask], "RGBA")


def png_data_url(image: Image.Image) -> str:
    """``data:image/png;base64,...`` of ``image`` (the CSP allows ``data:`` images)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
