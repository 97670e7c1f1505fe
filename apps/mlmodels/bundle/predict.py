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
    """The pixels as the dataset type encoded them: the stored values with the modality
    rescale, through the window when the dataset used one, else scaled per image
    (lowest value 0, highest 255); MONOCHROME1 inverted."""
    import pydicom

    dataset = pydicom.dcmread(path)
    values = dataset.pixel_array.astype(np.float64)
    values = values * float(dataset.get("RescaleSlope", 1)) + float(
        dataset.get("RescaleIntercept", 0)
    )
    window = SETTINGS.get("window")
    if window:
        low = window["center"] - window["width"] / 2
        high = window["center"] + window["width"] / 2
        values = np.clip(values, low, high)
    else:
        low, high = values.min(), values.max()
    scaled = (values - low) * 255.0 / (high - low) if high > low else values * 0
    image = np.rint(scaled).astype(np.uint8)
    if dataset.get("PhotometricInterpretation") == "MONOCHROME1":
        image = 255 - image
    return image


def load(path: Path) -> np.ndarray:
    height, width, channels = SETTINGS["input_shape"]
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = np.load(path)
    else:
        array = read_dicom(path) if suffix == ".dcm" else np.asarray(Image.open(path))
        image = Image.fromarray(array).convert("L" if channels == 1 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(image)
    return array.reshape(height, width, channels)


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
