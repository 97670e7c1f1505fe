"""Benchmark: classify-many throughput of the platform's evaluation job vs plain
batched ``model.predict`` on the same images.

    .venv/bin/python bench/evaluate.py [--images 10000] [--size 28] [--batch-size 256]
                                       [--repeats 3]

Data: scikit-learn's handwritten digits (8×8, scaled to 0..255, resized to ``--size``²),
repeated to ``--images`` entries of a dataset's ``val`` stage, stored as the image
classification plugin stores them — PNG records in TFRecord shards of 1,000 — in a
``LocalStore`` in a temporary folder. The model is the platform's LeNet as training
builds it (``Trainer.build_inference_model``: scaling is a layer of the model), with its
weights saved as a snapshot; untrained weights classify as fast as trained ones.

Two runs, alternated ``--repeats`` times in this one process (best and median reported):

- **plain**: the images already decoded in memory as one float32 array,
  ``model.predict(x, batch_size=B)`` on the model built and loaded beforehand;
- **platform**: ``apps.evaluations.evaluator.Evaluator.run`` — the code of a
  ``model.evaluate`` job process, with a stand-in context instead of the worker's pipe:
  extract the snapshot, rebuild the model and load its weights, stream the stage's PNG
  shards through tf.data (decode, batch, prefetch) into ``model.predict``, compute the
  figures, write ``predictions.npy``. What is timed is the whole ``run`` (the job's work
  after its process started and imported TensorFlow), and separately its classifying
  phase (reading, decoding and predicting, as the job logs it).

The script checks that both give the same probabilities. Images per second = images /
seconds; the ratio is platform / plain (goal: ≥ 0.8 for the whole run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BenchContext  # noqa: E402
from bench.train import setup_django  # noqa: E402

SHARD = 1000
NAMES = [str(i) for i in range(10)]


def write_dataset(count: int, size: int) -> tuple[dict, object]:
    """A dataset of ``count`` digits in its val stage (PNG TFRecord shards); its job params
    and the decoded images (uint8, (count, size, size, 1)) for the plain run."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    from apps.core.storage import get_store
    from apps.datasets import shards

    data = load_digits()
    small = np.round(data.images * 255.0 / 16.0).astype(np.uint8)
    resized = np.stack(
        [
            np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BILINEAR))
            for im in small
        ]
    )[:, :, :, None]
    picks = np.arange(count) % len(resized)
    prefix = "datasets/bench-evaluate/"
    stages = {}
    for stage, rows in (("train", picks[:100]), ("val", picks)):
        writer = shards.StageWriter(get_store(), prefix, stage, SHARD, "png")
        for i in rows:
            writer.add(shards.encode_image(resized[i], "png"), int(data.target[i]))
        writer.flush()
        stages[stage] = writer.summary()
    manifest = {
        "format": "tfrecord", "encoding": "png", "type": "image-classification",
        "feature": {"shape": [size, size, 1], "dtype": "uint8", "layout": "HWC"},
        "label": {"kind": "class"}, "label_names": NAMES, "shard_size": SHARD, "stages": stages,
    }  # fmt: skip
    return {"id": 1, "prefix": prefix, "manifest": manifest}, resized[picks]


def save_snapshot(dataset: dict, model_id: int, tmp: Path) -> dict:
    """Build LeNet as training does, save it as epoch 1's snapshot; the job's train params."""
    from apps.mlmodels import snapshots
    from apps.mlmodels.trainer import Trainer

    train_params = {
        "model_id": model_id, "dataset": dataset,
        "network": {"source": "standard", "name": "lenet"},
        "solver": {"mean_subtraction": "none", "epochs": 1}, "gpus": {"mode": "none"},
        "resume": False,
    }  # fmt: skip
    model = Trainer(
        BenchContext(train_params, None, ""), params=train_params
    ).build_inference_model()
    folder = tmp / "snapshot"
    folder.mkdir()
    model.save_weights(folder / "model.weights.h5")
    (folder / "state.json").write_text("{}")
    snapshots.save(model_id, 1, folder, "_staging/bench/")
    return train_params


class EvaluateContext(BenchContext):
    def artifact_key(self, name: str) -> str:
        return self.staging_prefix + name


def run_platform(params: dict) -> tuple[float, float, object]:
    from apps.core.storage import get_store
    from apps.evaluations import predictions
    from apps.evaluations.evaluator import Evaluator

    ctx = EvaluateContext(params, get_store(), "_staging/bench-evaluate/")
    started = time.perf_counter()
    result = Evaluator(ctx).run()
    seconds = time.perf_counter() - started
    table = predictions.read(get_store().get(ctx.artifact_key(predictions.NAME)))
    return seconds, result["seconds"], table


def plain_model(train_params: dict, tmp: Path):
    from apps.mlmodels import snapshots
    from apps.mlmodels.trainer import Trainer

    model = Trainer(
        BenchContext(train_params, None, ""), params=train_params
    ).build_inference_model()
    snapshots.extract(train_params["model_id"], 1, tmp / "plain")
    model.load_weights(tmp / "plain" / "model.weights.h5")
    return model


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="digits-bench-evaluate-") as name:
        tmp = Path(name)
        setup_django(tmp)
        import numpy as np
        import tensorflow as tf

        dataset, images = write_dataset(args.images, args.size)
        train_params = save_snapshot(dataset, 7, tmp)
        params = {
            "evaluation_id": 1, "model_id": 7, "epoch": 1, "train_params": train_params,
            "source": "stage", "stage": "val", "dataset": dataset, "archive_key": None,
            "list_key": None, "top_n": 5, "batch_size": args.batch_size,
        }  # fmt: skip
        model = plain_model(train_params, tmp)
        x = images.astype(np.float32)
        print(
            f"data: {args.images} images of {args.size}×{args.size} (PNG in TFRecord shards); "
            f"LeNet, batch {args.batch_size}; TensorFlow {tf.__version__}; {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        model.predict(x[: args.batch_size], verbose=0)  # trace once, outside the timing
        plain, whole, phase = [], [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            expected = model.predict(x, batch_size=args.batch_size, verbose=0)
            plain.append(time.perf_counter() - started)
            seconds, classifying, table = run_platform(params)
            whole.append(seconds)
            phase.append(classifying)
            assert np.allclose(table["probs"], expected, atol=1e-5), "different probabilities"
        report(args.images, plain, whole, phase)
    return 0


def report(count: int, plain, whole, phase) -> None:
    def rate(seconds):
        return count / min(seconds), count / statistics.median(seconds)

    rows = {
        "plain model.predict": rate(plain),
        "platform evaluation job (whole run)": rate(whole),
        "platform, classifying phase": rate(phase),
    }
    for label, (best, median) in rows.items():
        print(f"{label:38s} {best:9.0f} images/s best, {median:9.0f} median")
    best_plain = rows["plain model.predict"][0]
    print(
        f"ratio whole run / plain: {rows['platform evaluation job (whole run)'][0] / best_plain:.2f} "
        f"(goal ≥ 0.8); classifying phase / plain: {rows['platform, classifying phase'][0] / best_plain:.2f}"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
