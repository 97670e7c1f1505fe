"""The raw-output view: each output array as numbers and, when it has a spatial layout,
one heatmap per channel. Bounded: at most ``MAX_ROWS`` rows of values and
``MAX_CHANNELS`` heatmaps of at most ``HEATMAP_SIDE`` pixels per array."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from apps.core.plugins import Visualization, png_data_url

MAX_ROWS = 64
MAX_COLUMNS = 16
MAX_CHANNELS = 8
HEATMAP_SIDE = 256
#: Viridis at five points; values in between are interpolated.
COLOURMAP = np.array(
    [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], dtype=np.float64
)


def heatmap(values: np.ndarray) -> Image.Image:
    """An RGB picture of a 2-D array, its minimum dark blue and its maximum yellow."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    position = scaled * (len(COLOURMAP) - 1)
    below = np.clip(np.floor(position).astype(int), 0, len(COLOURMAP) - 2)
    weight = (position - below)[..., None]
    rgb = COLOURMAP[below] * (1 - weight) + COLOURMAP[below + 1] * weight
    image = Image.fromarray(rgb.round().astype(np.uint8), "RGB")
    if max(image.size) > HEATMAP_SIDE:
        scale = HEATMAP_SIDE / max(image.size)
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.NEAREST,
        )
    return image


class RawOutputView(Visualization):
    """The network's output arrays for one input, as they are."""

    tasks = ()  # any task

    @classmethod
    def get_id(cls) -> str:
        return "raw-output"

    @classmethod
    def get_title(cls) -> str:
        return "Raw output"

    @classmethod
    def get_config_form(cls):
        from digits_view_raw.forms import RawOutputForm

        return RawOutputForm

    @classmethod
    def get_config_template(cls, form):
        return "digits_view_raw/config.html", {"form": form}

    def get_view_template(self, data):
        return "digits_view_raw/view.html", data

    def _number(self, value) -> str:
        return f"{float(value):.{int(self.config.get('digits', 4))}f}"

    def process_data(self, input_id, input_data, output_data, ground_truth=None):
        arrays = [
            self._array(name, np.asarray(value))
            for name, value in output_data.items()
            if isinstance(value, np.ndarray)
            and value.size
            and np.issubdtype(value.dtype, np.number)
        ]
        return {"input_id": input_id, "arrays": arrays}

    def _array(self, name: str, array: np.ndarray) -> dict[str, Any]:
        labels = self.get_label_names() or []
        data = {
            "name": name,
            "shape": "×".join(str(n) for n in array.shape),
            "dtype": str(array.dtype),
            "min": self._number(array.min()),
            "max": self._number(array.max()),
            "mean": self._number(array.mean()),
            "heatmaps": [],
            "channels_left": 0,
        }
        if array.ndim in (2, 3):
            channels = array[..., None] if array.ndim == 2 else array
            shown = min(channels.shape[-1], MAX_CHANNELS)
            data["heatmaps"] = [self._heatmap(channels[..., c], c, labels) for c in range(shown)]
            data["channels_left"] = channels.shape[-1] - shown
        data.update(self._rows(array, labels))
        return data

    def _heatmap(self, values: np.ndarray, channel: int, labels: list[str]) -> dict[str, Any]:
        return {
            "channel": channel,
            "label": labels[channel] if channel < len(labels) else "",
            "image": png_data_url(heatmap(values)),
            "min": self._number(values.min()),
            "max": self._number(values.max()),
        }

    def _rows(self, array: np.ndarray, labels: list[str]) -> dict[str, Any]:
        """The values as table rows: a vector one per row (labelled with the class names
        when they fit), anything else one row per position over its last axis."""
        if array.ndim <= 1:
            flat = array.reshape(-1)
            named = len(labels) == flat.size
            rows = [
                {"label": labels[i] if named else str(i), "values": [self._number(v)]}
                for i, v in enumerate(flat[:MAX_ROWS])
            ]
            return {"rows": rows, "values_left": max(0, flat.size - MAX_ROWS)}
        table = array.reshape(-1, array.shape[-1])
        rows = [
            {
                "label": ",".join(str(int(i)) for i in np.unravel_index(r, array.shape[:-1])),
                "values": [self._number(v) for v in table[r, :MAX_COLUMNS]],
            }
            for r in range(min(len(table), MAX_ROWS))
        ]
        shown = sum(len(row["values"]) for row in rows)
        return {"rows": rows, "values_left": int(array.size - shown)}
