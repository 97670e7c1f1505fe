"""Classifying an image with a trained model: the work of a short ``model.infer`` job.

It runs in a job process like training, because the network may be user code
and the model file user-uploaded; the web process never loads either.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

TOP_K = 5


def prepare_image(data: bytes, input_shape) -> np.ndarray:
    """Decode (with Pillow's decompression-bomb limits) and squash to the network's input."""
    height, width, channels = input_shape
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array.reshape(height, width, channels)


def classify(ctx) -> dict:
    """The answer of the model's snapshot of ``epoch`` for the job's image, as its task
    gives it (``Task.postprocess``): the top ``TOP_K`` classes for classification."""
    from apps.core.storage import get_store
    from apps.mlmodels import snapshots, tasks
    from apps.mlmodels.trainer import Trainer

    params = ctx.params
    train_params = params["train_params"]
    manifest = train_params["dataset"]["manifest"]
    ctx.status("Loading the model")
    folder = Path(tempfile.mkdtemp(prefix="infer-"))
    snapshots.extract(params["model_id"], params["epoch"], folder)
    trainer = Trainer(ctx, params=train_params)
    model = trainer.build_inference_model()
    model.load_weights(folder / "model.weights.h5")
    image = prepare_image(get_store().get(params["image_key"]), trainer.input_shape)
    outputs = model.predict(image[None].astype(np.float32), verbose=0)[0]
    task = tasks.task_of(manifest)
    answer = task.postprocess(outputs, top_n=TOP_K, label_names=manifest.get("label_names"))
    # A job's result is JSON: arrays (a segmentation mask) are for warm inference's callers.
    answer = {k: v for k, v in answer.items() if not isinstance(v, np.ndarray)}
    if answer.get("predictions"):
        top = answer["predictions"][0]
        ctx.log(f"Top prediction: {top['label']} ({top['probability']:.1%})")
    return {"epoch": params["epoch"], **answer}
