"""Benchmark: segmentation training throughput of the platform vs a plain Keras script.

    .venv/bin/python bench/train_segmentation.py [--cases 8] [--slices 16] [--size 64]
                                                 [--batch-size 16] [--epochs 3] [--repeats 3]

Data: a Sunnybrook-layout tree of DICOM files (``digits_sunnybrook.testing.
make_ellipse_tree``: 12-bit images, an ellipse "ventricle" per slice and its contour),
built by the Sunnybrook plugin (``BuildDataset.run``, the code of a dataset job process)
into a ``LocalStore`` in a temporary folder.

Two runs of the same U-Net (``apps.mlmodels.networks.unet``) on the same training images
and masks, batch size, optimizer (Adam, fixed rate) and number of epochs, in this one
process, as ``bench/train.py`` does for classification (see its docstring for why
in-process, and the clocks):

- **plain**: a Keras script: the training images and masks read into memory,
  ``from_tensor_slices`` → cache → shuffle → batch → prefetch, ``Rescaling(1/255)`` + the
  U-Net, sparse categorical cross-entropy, Keras' ``accuracy`` (pixel accuracy) metric.
- **platform**: ``apps.mlmodels.trainer.Trainer.run`` — the code of a ``model.train`` job
  process for a segmentation dataset: NumPy shards, the segmentation task's loss and
  confusion-matrix metric (pixel accuracy, IoU and Dice per class), the learning-rate
  schedule, ``MetricsReporter`` reporting every 20 steps to a drained pipe.

Validation is off in both; epoch 1 (tracing, filling the cache) is not timed. Images per
CPU-second (this process's CPU time) over epochs 2..N is the figure to compare on a
shared machine; the best of ``--repeats`` is reported with the median beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.train import BuildContext, EpochClock, setup_django  # noqa: E402

METRICS_EVERY = 20


def build_dataset(root: Path, args) -> dict:
    """The ellipse tree built by the Sunnybrook plugin; the dataset's job params."""
    from digits_sunnybrook.forms import SunnybrookForm
    from digits_sunnybrook.testing import make_ellipse_tree

    from apps.core.storage import get_store
    from apps.datasets.kinds import BuildDataset
    from apps.datasets.services import json_options

    tree = make_ellipse_tree(root, cases=args.cases, slices=args.slices, size=args.size)
    form = SunnybrookForm(
        data={"image_folder": str(tree.images), "contour_folder": str(tree.contours),
              "val_percent": 0, "seed": 1}
    )  # fmt: skip
    if not form.is_valid():
        sys.exit(f"dataset options refused: {form.errors.as_json()}")
    params = {
        "dataset_id": 0, "type": "image-sunnybrook", "processes": 2,
        "max_error_percent": 0, "options": json_options(form.cleaned_data, owner=None),
    }  # fmt: skip
    prefix = "datasets/bench-seg/"
    manifest = BuildDataset().run(BuildContext(params, get_store(), prefix))
    return {"id": 0, "prefix": prefix, "manifest": manifest}


def train_arrays(dataset: dict):
    import numpy as np

    from apps.datasets import shards
    from apps.mlmodels.data import dataset_info

    info = dataset_info(dataset["id"], dataset["prefix"], dataset["manifest"])
    count = dataset["manifest"]["stages"]["train"]["count"]
    entries = [shards.read_entry(info, "train", i) for i in range(count)]
    return np.stack([f for f, _ in entries]), np.stack([m for _, m in entries])


def run_plain(images, masks, args) -> EpochClock:
    import keras
    import tensorflow as tf

    from apps.mlmodels.networks import unet

    clock = EpochClock()

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            clock.begin(epoch)

        def on_epoch_end(self, epoch, logs=None):
            clock.end(epoch)

    ds = (
        tf.data.Dataset.from_tensor_slices((images.astype("float32"), masks))
        .cache()
        .shuffle(len(masks), reshuffle_each_iteration=True)
        .batch(args.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    inputs = keras.Input(images.shape[1:])
    core = unet(images.shape[1:], 2)
    model = keras.Model(inputs, core(keras.layers.Rescaling(1 / 255.0)(inputs)))
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(ds, epochs=args.epochs, callbacks=[Clock()], verbose=0, shuffle=False)
    return clock


def run_platform(dataset: dict, args, model_id: int) -> EpochClock:
    import apps.mlmodels.trainer as trainer_module
    from apps.jobs.context import JobContext
    from apps.mlmodels.params import TrainParams

    clock = EpochClock()

    class ClockedReporter(trainer_module.MetricsReporter):
        def on_epoch_begin(self, epoch, logs=None):
            clock.begin(epoch)
            super().on_epoch_begin(epoch, logs)

        def on_epoch_end(self, epoch, logs=None):
            clock.end(epoch)
            super().on_epoch_end(epoch, logs)

    params = TrainParams(
        data={
            "model_id": model_id, "dataset": dataset,
            "network": {"source": "standard", "name": "unet"},
            "solver": {"epochs": args.epochs, "batch_size": args.batch_size, "base_lr": args.lr,
                       "policy": "fixed", "optimizer": "adam", "mean_subtraction": "none",
                       "val_interval": args.epochs + 1, "snapshot_interval": args.epochs,
                       "metrics_every": METRICS_EVERY},
            "gpus": {"mode": "none"},
        }
    )  # fmt: skip
    params.is_valid(raise_exception=True)
    drain = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    channel = open(drain.stdin.fileno(), "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    ctx = JobContext(
        job_id=model_id, kind="model.train", params=dict(params.validated_data), attempt=1,
        staging_prefix=f"_staging/jobs/{model_id}/attempt-1/", channel=channel,
    )  # fmt: skip
    original = trainer_module.MetricsReporter
    trainer_module.MetricsReporter = ClockedReporter
    try:
        result = trainer_module.Trainer(ctx).run()
    finally:
        trainer_module.MetricsReporter = original
        channel.close()
        drain.stdin.close()
        drain.wait()
    assert result["task"] == "segmentation" and len(result["epochs"]) == args.epochs, result
    return clock


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--slices", type=int, default=16, help="contoured slices per case")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--epochs", type=int, default=3, help="≥ 2; epoch 1 is not timed")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2")

    with tempfile.TemporaryDirectory(prefix="digits-bench-seg-") as name:
        tmp = Path(name)
        setup_django(tmp)
        import keras
        import tensorflow as tf

        started = time.perf_counter()
        dataset = build_dataset(tmp / "data" / "sunnybrook", args)
        images, masks = train_arrays(dataset)
        train = len(masks)
        print(
            f"data: {train} DICOM slices of {args.size}×{args.size} with masks "
            f"({time.perf_counter() - started:.1f} s to write and build); U-Net, batch "
            f"{args.batch_size}, {args.epochs} epochs ({args.epochs - 1} timed); TensorFlow "
            f"{tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f}"
        )
        runs = {
            "plain Keras": lambda i: run_plain(images, masks, args),
            "platform": lambda i: run_platform(dataset, args, 10 + i),
        }
        timed = train * (args.epochs - 1)
        rates: dict[str, list[float]] = {label: [] for label in runs}
        cpu_rates: dict[str, list[float]] = {label: [] for label in runs}
        for i in range(args.repeats):
            for label, run in runs.items():
                keras.backend.clear_session()
                wall, cpu = run(i).steady()
                rates[label].append(timed / wall)
                cpu_rates[label].append(timed / cpu)
                print(
                    f"  repeat {i + 1}: {label:<12} {timed / wall:7.1f} images/s, "
                    f"{timed / cpu:7.1f} images per CPU-second (load {os.getloadavg()[0]:.1f})"
                )
        print(f"\nbest (median) of {args.repeats}:  images/s (wall)   images per CPU-second")
        for label in runs:
            print(
                f"  {label:<12} {max(rates[label]):8.1f} ({statistics.median(rates[label]):6.1f})"
                f"   {max(cpu_rates[label]):8.1f} ({statistics.median(cpu_rates[label]):6.1f})"
            )
        for title, table, pick in (
            ("CPU time, best", cpu_rates, max),
            ("CPU time, median", cpu_rates, statistics.median),
            ("wall clock, best", rates, max),
        ):
            plain, platform = (pick(values) for values in table.values())
            print(f"{title}: platform vs plain {platform / plain:.3f} (target ≥ 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
