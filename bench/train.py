"""Benchmark: training throughput of the platform's training job vs a plain Keras script.

    .venv/bin/python bench/train.py [--copies 2] [--size 28] [--batch-size 32]
                                    [--epochs 3] [--repeats 5]

Data: scikit-learn's handwritten digits (8×8, scaled to 0..255), each written
``--copies`` times as PNG files into one folder per class, built into a grayscale
``--size``² dataset by the image classification plugin (``BuildDataset.run``, the code a
dataset job process runs) into a ``LocalStore`` in a temporary folder.

Three runs of LeNet on the same training images, batch size, optimizer (Adam,
fixed rate), metrics (accuracy, top-5) and number of epochs, in this one process:

- **plain**: a Keras script: the training images read once into memory,
  ``tf.data.Dataset.from_tensor_slices`` → cache → shuffle → batch → prefetch,
  ``Rescaling(1/255)`` + LeNet (``apps.mlmodels.networks.lenet``), ``model.fit``.
- **platform, streaming off**: ``apps.mlmodels.trainer.Trainer.run`` — the code of a
  ``model.train`` job process: TFRecord shards, PNG decoding, its preprocessing layer,
  the ``DigitsSchedule`` learning rate, ``MetricsReporter`` — with ``metrics_every``
  100000 (no step is ever reported).
- **platform, streaming on**: the same with the default ``metrics_every`` 20.

Why in-process rather than through a worker: the platform's overhead is its training
loop (input pipeline, schedule, the per-batch callback, event serialisation), and it is
measured best when nothing else differs from the plain script — same process, same
TensorFlow thread pools, no process start or TensorFlow import in the timing. The
context is the real ``apps.jobs.context.JobContext`` writing its JSON event lines to a
pipe drained by a separate process (``cat``), as the worker drains the job's pipe; the
worker's own per-event work (batched database inserts every 0.25 s) is not measured.
No database, broker or object store server is involved.

Images per second count the training phase of epochs 2..N (epoch 1 includes tracing and,
for the platform, decoding the PNG shards into the cache); validation is off in all three
and the platform's one snapshot (after the last epoch) is outside the timing. Beside the
wall-clock rate, images per CPU-second (this process's CPU time, all threads, over the same
phase) move much less with other load on a shared machine: compare those. Runs rotate
(plain, off, on) ``--repeats`` times; the best of each is reported (least disturbed by
other load) with the median beside it. The share of the training phase spent inside the
platform's per-batch callback (``MetricsReporter.on_train_batch_end``: the abort check,
the iteration count, and every ``metrics_every`` steps four metric events and a progress
event) is timed directly too: a figure that does not depend on comparing noisy runs. No seed is set, so TensorFlow's
op determinism (which a seeded platform run enables) stays off for every run.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STREAMING_OFF = 100_000  # the largest metrics_every: effectively never
STREAMING_ON = 20  # the default


def setup_django(tmp: Path) -> None:
    """Settings with a local artifact store and data folder under ``tmp`` (never ``./var``)."""
    for name in [n for n in os.environ if n.startswith("DIGITS_S3_")]:
        del os.environ[name]  # a LocalStore, even inside scripts/with_test_services.py
    os.environ["DIGITS_DATA_DIR"] = str(tmp / "var")
    os.environ["DIGITS_ARTIFACT_ROOT"] = str(tmp / "store")
    os.environ["DIGITS_SERVER_DATA_ROOTS"] = str(tmp / "data")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import django

    django.setup()


# --- data ------------------------------------------------------------------------------
def write_digits(folder: Path, copies: int) -> int:
    """``folder/<digit>/img_NNNN_C.png``: every digit ``copies`` times; returns the count."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.round(data.images * 255.0 / 16.0).astype(np.uint8)
    for i, (image, label) in enumerate(zip(images, data.target, strict=True)):
        out = io.BytesIO()
        Image.fromarray(image).save(out, format="PNG")
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        for copy in range(copies):
            (folder / str(label) / f"img_{i:04d}_{copy}.png").write_bytes(out.getvalue())
    return len(images) * copies


class BuildContext:
    """What ``BuildDataset.run`` uses of a job context."""

    def __init__(self, params: dict, store, staging_prefix: str):
        self.params, self.store, self.staging_prefix = params, store, staging_prefix

    def status(self, text: str) -> None:
        pass

    def log(self, message: str, level: str = "info") -> None:
        pass

    def progress(self, fraction: float, eta_seconds: float | None = None, text: str = "") -> None:
        pass

    def metric(self, series: str, value: float, step: int | None = None) -> None:
        pass

    def check_abort(self) -> None:
        pass


def build_dataset(folder: Path, size: int) -> dict:
    """Build the folder into a dataset with the image classification plugin; its job params."""
    from digits_imageclass.forms import ImageClassificationForm

    from apps.core.storage import get_store
    from apps.datasets.kinds import BuildDataset
    from apps.datasets.services import json_options

    form = ImageClassificationForm(
        data={"source": "folder", "folder": str(folder), "image_type": "grayscale",
              "width": size, "height": size, "val_percent": 10, "mean_image": False}
    )  # fmt: skip
    if not form.is_valid():
        sys.exit(f"dataset options refused: {form.errors.as_json()}")
    params = {
        "dataset_id": 0, "type": "image-classification", "processes": 2,
        "max_error_percent": 0, "options": json_options(form.cleaned_data, owner=None),
    }  # fmt: skip
    prefix = "datasets/bench/"
    manifest = BuildDataset().run(BuildContext(params, get_store(), prefix))
    return {"id": 0, "prefix": prefix, "manifest": manifest}


def train_arrays(dataset: dict):
    """The training stage as in-memory arrays (for the plain script): the very same images."""
    import numpy as np

    from apps.datasets import shards
    from apps.mlmodels.data import dataset_info

    info = dataset_info(dataset["id"], dataset["prefix"], dataset["manifest"])
    count = dataset["manifest"]["stages"]["train"]["count"]
    entries = [shards.read_entry(info, "train", i) for i in range(count)]
    images = np.stack([features for features, _ in entries])
    labels = np.array([label for _, label in entries], np.int64)
    return images, labels


# --- timing ----------------------------------------------------------------------------
class EpochClock:
    """Wall and CPU time of each epoch's training phase: its start to the end of its last batch.

    CPU time is this process's, all threads (TensorFlow's pools, tf.data, Python).
    """

    def __init__(self):
        self.started: dict[int, tuple[float, float]] = {}
        self.wall: dict[int, float] = {}
        self.cpu: dict[int, float] = {}
        self.epoch = 0
        #: Wall seconds spent in the platform's per-batch callback, per epoch.
        self.in_callback: dict[int, float] = {}

    def begin(self, epoch: int) -> None:
        self.epoch = epoch
        self.started[epoch] = (time.perf_counter(), time.process_time())

    def end(self, epoch: int) -> None:
        wall, cpu = self.started[epoch]
        self.wall[epoch] = time.perf_counter() - wall
        self.cpu[epoch] = time.process_time() - cpu

    def steady(self) -> tuple[float, float]:
        """Wall and CPU seconds of epochs 2..N (epoch 1 traces the step, fills the caches)."""
        return (
            sum(s for e, s in self.wall.items() if e > 0),
            sum(s for e, s in self.cpu.items() if e > 0),
        )

    def callback_seconds(self) -> float:
        """Wall seconds of epochs 2..N spent in the per-batch callback."""
        return sum(s for e, s in self.in_callback.items() if e > 0)

    def callback_share(self) -> float:
        """The share of epochs 2..N's training phase spent in the per-batch callback."""
        return self.callback_seconds() / self.steady()[0]


def run_plain(images, labels, args) -> EpochClock:
    import keras
    import tensorflow as tf

    from apps.mlmodels.networks import lenet

    clock = EpochClock()

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            clock.begin(epoch)

        def on_epoch_end(self, epoch, logs=None):
            clock.end(epoch)

    num_classes = int(labels.max()) + 1
    ds = (
        tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels))
        .cache()
        .shuffle(len(labels), reshuffle_each_iteration=True)
        .batch(args.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    inputs = keras.Input(images.shape[1:])
    core = lenet(images.shape[1:], num_classes)
    model = keras.Model(inputs, core(keras.layers.Rescaling(1 / 255.0)(inputs)))
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5")],
    )
    model.fit(ds, epochs=args.epochs, callbacks=[Clock()], verbose=0, shuffle=False)
    return clock


def run_platform(dataset: dict, args, metrics_every: int, model_id: int) -> EpochClock:
    import apps.mlmodels.trainer as trainer_module
    from apps.jobs.context import JobContext
    from apps.mlmodels.params import TrainParams

    clock = EpochClock()

    class ClockedReporter(trainer_module.MetricsReporter):
        def on_epoch_begin(self, epoch, logs=None):
            clock.begin(epoch)
            super().on_epoch_begin(epoch, logs)

        def on_epoch_end(self, epoch, logs=None):
            clock.end(epoch)  # before the reporter's epoch work (the snapshot after the last)
            super().on_epoch_end(epoch, logs)

        def on_train_batch_end(self, batch, logs=None):
            started = time.perf_counter()
            super().on_train_batch_end(batch, logs)
            spent = time.perf_counter() - started
            clock.in_callback[clock.epoch] = clock.in_callback.get(clock.epoch, 0.0) + spent

    params = TrainParams(
        data={
            "model_id": model_id, "dataset": dataset,
            "network": {"source": "standard", "name": "lenet"},
            "solver": {"epochs": args.epochs, "batch_size": args.batch_size, "base_lr": args.lr,
                       "policy": "fixed", "optimizer": "adam", "mean_subtraction": "none",
                       "val_interval": args.epochs + 1, "snapshot_interval": args.epochs,
                       "metrics_every": metrics_every},
            "gpus": {"mode": "none"},
        }
    )  # fmt: skip
    params.is_valid(raise_exception=True)
    # The worker's end of the event pipe: another process reads and drops the lines.
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
    assert [e["epoch"] for e in result["epochs"]] == list(range(1, args.epochs + 1)), result
    return clock


# --- main ------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=2, help="each digit this many times")
    parser.add_argument("--size", type=int, default=28, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--epochs", type=int, default=3, help="≥ 2; epoch 1 is not timed")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2")

    with tempfile.TemporaryDirectory(prefix="digits-bench-train-") as name:
        tmp = Path(name)
        setup_django(tmp)
        import keras
        import tensorflow as tf

        started = time.perf_counter()
        written = write_digits(tmp / "data" / "digits", args.copies)
        dataset = build_dataset(tmp / "data" / "digits", args.size)
        images, labels = train_arrays(dataset)
        train = len(labels)
        print(
            f"data: {written} digit images → {train} training images of {args.size}×{args.size} "
            f"({time.perf_counter() - started:.1f} s to write and build); batch {args.batch_size}, "
            f"{args.epochs} epochs ({args.epochs - 1} timed), {-(-train // args.batch_size)} steps "
            f"an epoch; TensorFlow {tf.__version__}, Keras {keras.__version__}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        runs = {
            "plain Keras": lambda i: run_plain(images, labels, args),
            "platform, streaming off": lambda i: run_platform(dataset, args, STREAMING_OFF, 10 + i),
            f"platform, metrics every {STREAMING_ON}": lambda i: run_platform(
                dataset, args, STREAMING_ON, 100 + i
            ),
        }  # fmt: skip
        images_timed = train * (args.epochs - 1)
        rates: dict[str, list[float]] = {label: [] for label in runs}
        cpu_rates: dict[str, list[float]] = {label: [] for label in runs}
        in_callback: dict[str, list[float]] = {label: [] for label in runs}
        per_batch: dict[str, list[float]] = {label: [] for label in runs}
        batches_timed = -(-train // args.batch_size) * (args.epochs - 1)
        for i in range(args.repeats):
            for label, run in runs.items():
                keras.backend.clear_session()
                clock = run(i)
                wall, cpu = clock.steady()
                rates[label].append(images_timed / wall)
                cpu_rates[label].append(images_timed / cpu)
                in_callback[label].append(clock.callback_share())
                per_batch[label].append(clock.callback_seconds() / batches_timed)
                print(
                    f"  repeat {i + 1}: {label:<28} {images_timed / wall:7.0f} images/s, "
                    f"{1000 * cpu / images_timed:6.3f} ms CPU an image, "
                    f"{100 * clock.callback_share():5.2f} % in the batch callback "
                    f"(load {os.getloadavg()[0]:.1f})"
                )

        print(f"\nbest (median) of {args.repeats}:  images/s (wall)   images per CPU-second")
        for label in runs:
            print(
                f"  {label:<28} {max(rates[label]):6.0f} ({statistics.median(rates[label]):4.0f})"
                f"   {max(cpu_rates[label]):8.0f} ({statistics.median(cpu_rates[label]):4.0f})"
            )
        print()
        for title, table, pick in (
            ("wall clock, best", rates, max),
            ("wall clock, median", rates, statistics.median),
            ("CPU time, best", cpu_rates, max),
            ("CPU time, median", cpu_rates, statistics.median),
        ):
            plain, off, on = (pick(values) for values in table.values())
            print(
                f"{title}: platform (metrics every {STREAMING_ON}) vs plain {on / plain:.3f} "
                f"(target ≥ 0.95); streaming off vs plain {off / plain:.3f}; "
                f"cost of streaming {100 * (1 - on / off):+.1f} % (target < 2 %)"
            )
        print()
        for label in list(runs)[1:]:
            print(
                f"time in MetricsReporter.on_train_batch_end, {label}: "
                f"{100 * statistics.median(in_callback[label]):.2f} % of the training phase, "
                f"{1e6 * statistics.median(per_batch[label]):.0f} µs a batch (medians)"
            )
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
