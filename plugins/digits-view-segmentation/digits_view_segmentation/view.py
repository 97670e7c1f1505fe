"""The image-segmentation view: the predicted mask over the input, the mask alone, scores."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from apps.core.plugins import (
    Visualization,
    colour_mask,
    features_to_image,
    mean_score,
    png_data_url,
    segmentation_scores,
)

#: Pictures are shown at most this many pixels wide or high (scores use every pixel).
MAX_SIDE = 1024


def predicted_mask(output_data: dict[str, Any]) -> np.ndarray:
    """The ``(H, W)`` class-index mask: the task's ``"mask"``, else the argmax of the raw
    per-pixel output ``(H, W, classes)``."""
    if output_data.get("mask") is not None:
        mask = np.asarray(output_data["mask"])
    else:
        output = np.asarray(output_data["output"])
        if output.ndim != 3:
            raise ValueError(f"a segmentation output is (H, W, classes), not {output.shape}")
        mask = np.argmax(output, axis=-1)
    return mask.astype(np.uint8)


def hex_colour(colour) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour[:3])


def _shown(image: Image.Image, resample) -> Image.Image:
    """``image`` shrunk to fit ``MAX_SIDE`` (the page stays a few megabytes at most)."""
    if max(image.size) <= MAX_SIDE:
        return image
    scale = MAX_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, resample)


def _on_black(layer: Image.Image) -> Image.Image:
    background = Image.new("RGB", layer.size)
    background.paste(layer, mask=layer.getchannel("A"))
    return background


class ImageSegmentationView(Visualization):
    """Overlay (with an opacity control), the mask alone, per-class pixels, Dice and IoU."""

    tasks = ("segmentation",)

    @classmethod
    def get_id(cls) -> str:
        return "image-segmentation"

    @classmethod
    def get_title(cls) -> str:
        return "Image segmentation"

    @classmethod
    def get_config_form(cls):
        from digits_view_segmentation.forms import SegmentationViewForm

        return SegmentationViewForm

    @classmethod
    def get_config_template(cls, form):
        return "digits_view_segmentation/config.html", {"form": form}

    def get_header_template(self):
        return "digits_view_segmentation/header.html", {"classes": self._classes(None)}

    def get_view_template(self, data):
        return "digits_view_segmentation/view.html", data

    def _classes(self, count: int | None) -> list[dict[str, Any]]:
        names = self.get_label_names() or []
        palette = self.get_palette()
        count = max(count or 0, len(names))
        return [
            {
                "index": index,
                "name": names[index] if index < len(names) else f"class {index}",
                "colour": hex_colour(palette[index % len(palette)]) if index else "#000000",
            }
            for index in range(count)
        ]

    def process_data(self, input_id, input_data, output_data, ground_truth=None):
        mask = predicted_mask(output_data)
        image = features_to_image(input_data)
        if mask.shape != (image.height, image.width):  # an output smaller than the input
            mask = np.asarray(Image.fromarray(mask).resize(image.size, Image.Resampling.NEAREST))
        output = output_data.get("output")
        count = int(mask.max(initial=0)) + 1
        if output is not None and np.ndim(output) == 3:
            count = max(count, np.shape(output)[-1])
        classes = self._classes(count)
        palette = self.get_palette()
        pixels = np.bincount(mask.ravel(), minlength=len(classes))
        for row in classes:
            row["pixels"] = int(pixels[row["index"]])
            row["share"] = row["pixels"] / mask.size
        data = {
            "input_id": input_id,
            "width": image.width,
            "height": image.height,
            "opacity": int(self.config.get("opacity", 50)),
            "image": png_data_url(_shown(image, Image.Resampling.BILINEAR)),
            "mask_layer": png_data_url(
                _shown(colour_mask(mask, palette), Image.Resampling.NEAREST)
            ),
            "classes": classes,
            "has_ground_truth": ground_truth is not None,
        }
        data["mask_alone"] = png_data_url(
            _on_black(_shown(colour_mask(mask, palette), Image.Resampling.NEAREST))
        )
        if ground_truth is not None:
            data.update(self._scores(mask, np.asarray(ground_truth), classes, palette))
        return data

    def _scores(self, mask, truth, classes, palette) -> dict[str, Any]:
        scores = segmentation_scores(mask, truth, max(len(classes), int(truth.max()) + 1))
        for score in scores:
            if score["index"] < len(classes):
                classes[score["index"]].update(dice=score["dice"], iou=score["iou"])
        return {
            "dice": mean_score(scores, "dice"),
            "iou": mean_score(scores, "iou"),
            "truth": png_data_url(
                _on_black(_shown(colour_mask(truth, palette), Image.Resampling.NEAREST))
            ),
        }
