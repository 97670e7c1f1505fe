"""Run this model on images with plain Keras, outside the platform.

    python predict.py IMAGE [IMAGE ...] [--mask OUT.png]

IMAGE: a PNG/JPEG file, a .npy array (H, W, C) as the dataset stored it, or a DICOM file
(.dcm, needs pydicom). Needs keras 3 with a backend (TensorFlow), NumPy and Pillow.
preprocessing.json (next to this file) says what the model expects; scaling and mean
subtraction are layers of model.keras, which takes raw pixel values.

Classification prints the top classes; segmentation prints the pixels of each class and
writes the mask (one class index per pixel, 8-bit PNG) to --mask.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
SETTINGS = json.loads((HERE / "preprocessing.json").read_text())


def read_dicom(path: Path) -> np.ndarray:
    """The pixels as the dataset type encoded them, by the dataset's options (Sunnybrook's
    ``intensity``, ``bit_depth``, window and percentiles): the stored values through the
    modality rescale, then mapped to 8 or 16 bits — per image lowest to highest
    (``minmax``), the file's own window or VOI LUT (``window``), a fixed window
    (``fixed``, DICOM's linear function), per image between two percentiles
    (``percentile``), or the values as stored (``raw``); MONOCHROME1 inverted."""
    import pydicom
    from pydicom.pixels import apply_modality_lut

    dataset = pydicom.dcmread(path, force=True)
    values = np.asarray(apply_modality_lut(dataset.pixel_array, dataset), dtype=np.float64)
    options = {**SETTINGS.get("dataset_options", {})}
    if SETTINGS.get("window") and not options.get("intensity"):  # older bundles
        window = SETTINGS["window"]
        options.update(intensity="fixed", window_center=window["center"],
                       window_width=window["width"])  # fmt: skip
    top = 65535 if int(options.get("bit_depth") or 8) == 16 else 255
    mode = options.get("intensity") or "minmax"
    image = _map(values, dataset, mode, options, top)
    if dataset.get("PhotometricInterpretation") == "MONOCHROME1" and mode != "raw":
        image = top - image
    return image.astype(np.uint16 if top == 65535 else np.uint8)


def _map(values, dataset, mode, options, top):
    if mode == "raw":
        return np.rint(values)
    if mode == "window" and (dataset.get("VOILUTSequence") or "WindowCenter" in dataset):
        return _file_window(values, dataset, top)
    if mode == "fixed":
        center = float(options["window_center"]) - 0.5
        width = float(options["window_width"]) - 1
        if width <= 0:
            return np.where(values > center, top, 0)
        return np.rint(np.clip(((values - center) / width + 0.5) * top, 0, top))
    low, high = float(values.min()), float(values.max())
    if mode == "percentile":
        bounds = [
            float(options.get("percentile_low", 0.5)),
            float(options.get("percentile_high", 99.5)),
        ]
        low, high = (float(v) for v in np.percentile(values, bounds))
    return _scale(values, low, high, top)


def _file_window(values, dataset, top):
    from pydicom.pixels import apply_voi_lut, apply_windowing

    if dataset.get("VOILUTSequence"):  # a table indexed by whole modality values
        mapped = apply_voi_lut(np.rint(values).astype(np.int64), dataset, index=0)
        low, high = 0.0, float(2 ** int(dataset.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    else:
        mapped = apply_voi_lut(values, dataset, index=0)
        extremes = apply_windowing(np.array([-1e300, 1e300]), dataset, index=0)
        low, high = (float(v) for v in extremes)
    return _scale(np.asarray(mapped, dtype=np.float64), low, high, top)


def _scale(values, low, high, top):
    if high <= low:
        return np.zeros(values.shape)
    return np.rint((np.clip(values, low, high) - low) * float(top) / (high - low))


def load(path: Path) -> np.ndarray:
    height, width, channels = SETTINGS["input_shape"]
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = np.load(path)
    elif suffix == ".dcm":
        array = _resized(read_dicom(path), width, height)
    else:
        image = Image.open(path).convert("L" if channels == 1 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(image)
    return array.reshape(height, width, channels)


def _resized(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """A (gray) DICOM image at the network's size, keeping its 8 or 16 bits."""
    if array.shape[:2] == (height, width):
        return array
    image = Image.fromarray(array.astype(np.float32), mode="F")
    resized = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
    return np.rint(resized).astype(array.dtype)


def main() -> None:
    import keras

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--mask", type=Path, help="segmentation: write the (first) mask here")
    args = parser.parse_args()
    model = keras.models.load_model(HERE / "model.keras", compile=False, safe_mode=True)
    names = SETTINGS.get("label_names") or []
    batch = np.stack([load(path) for path in args.images]).astype(np.float32)
    outputs = model.predict(batch, verbose=0)
    for path, output in zip(args.images, outputs, strict=True):
        label = lambda i: names[i] if i < len(names) else str(i)  # noqa: E731
        if SETTINGS["task"] == "segmentation":
            mask = np.argmax(output, axis=-1).astype(np.uint8)
            counts = np.bincount(mask.reshape(-1), minlength=output.shape[-1])
            print(path, ", ".join(f"{label(i)}: {c} px" for i, c in enumerate(counts)))
            if args.mask is not None:
                Image.fromarray(mask).save(args.mask)
                args.mask = None
        else:
            top = np.argsort(output)[::-1][:5]
            print(path, ", ".join(f"{label(i)} {output[i]:.1%}" for i in top))


if __name__ == "__main__":
    main()
