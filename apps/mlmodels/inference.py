"""Classifying an image with a trained model: a short ``model.infer`` job.

It runs in a job process like training, because the network may be user code
and the model file user-uploaded; the web process never loads either.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from rest_framework import serializers

from apps.jobs.kinds import Input, JobKind, register

TOP_K = 5


class InferParams(serializers.Serializer):
    model_id = serializers.IntegerField()
    epoch = serializers.IntegerField(min_value=1)
    image_key = serializers.CharField()
    train_params = serializers.DictField()


def prepare_image(data: bytes, input_shape) -> np.ndarray:
    """Decode (with Pillow's decompression-bomb limits) and squash to the network's input."""
    height, width, channels = input_shape
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array.reshape(height, width, channels)


@register
class ClassifyImage(JobKind):
    name = "model.infer"
    title = "Classify image"
    params_serializer = InferParams

    def inputs(self, params):
        from apps.mlmodels import snapshots
        from apps.mlmodels.training import train_inputs

        dataset = params["train_params"]["dataset"]
        return [
            Input(snapshots.key(params["model_id"], params["epoch"])),
            Input(params["image_key"]),
            Input(dataset["prefix"], cache=(dataset["id"], dataset["manifest"])),
            *train_inputs(params["train_params"])[2:],  # the network's source, if any
        ]

    def run(self, ctx):
        from apps.core.storage import get_store
        from apps.mlmodels import snapshots
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
        probabilities = model.predict(image[None].astype(np.float32), verbose=0)[0]
        names = manifest.get("label_names") or [str(i) for i in range(len(probabilities))]
        order = np.argsort(probabilities)[::-1][:TOP_K]
        predictions = [
            {"index": int(i), "label": names[i], "probability": float(probabilities[i])}
            for i in order
        ]
        ctx.log(
            "Top prediction: " + f"{predictions[0]['label']} ({predictions[0]['probability']:.1%})"
        )
        return {"epoch": params["epoch"], "predictions": predictions}
