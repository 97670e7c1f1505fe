"""The training loop of ``model.train`` jobs (imports TensorFlow: job processes only)."""

from __future__ import annotations

import json
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import keras
import numpy as np
import psutil

from apps.jobs import sysmetrics
from apps.mlmodels import snapshots, tasks
from apps.mlmodels.params import AugmentationParams

AUGMENTATION_DEFAULTS = {name: field.default for name, field in AugmentationParams().fields.items()}


class Trainer:
    def __init__(self, ctx, params=None):
        self.ctx = ctx
        self.params = params or ctx.params
        self.solver = self.params["solver"]
        self.model_id = self.params["model_id"]
        # Below TMPDIR, the job's private folder: removed with it, even after a kill.
        self.workdir = Path(tempfile.mkdtemp(prefix=f"train-{self.model_id}-"))

    def _dataset(self):
        from apps.mlmodels import data

        ds = self.params["dataset"]
        info = data.dataset_info(ds["id"], ds["prefix"], ds["manifest"])
        self.task = tasks.task_of(info.manifest)
        names = info.manifest.get("label_names") or []
        self.num_classes = len(names) or int(data.labels_of(info, "train").max()) + 1
        self.input_shape = tuple(info.manifest["feature"]["shape"])
        return info

    def build_inference_model(self):
        """The trained architecture (weights still to be loaded): how inference runs."""
        return self.build_model(self._dataset())

    # --- setup ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        import tensorflow as tf

        seed = self.solver.get("seed")
        if seed is not None:
            keras.utils.set_random_seed(seed)
            tf.config.experimental.enable_op_determinism()
        info = self._dataset()
        self.ctx.status("Loading data")
        train, val = self._pipelines(info, seed)
        epochs = self.solver["epochs"]
        model = self._compiled_model(info, max_iter=self.steps_per_epoch * epochs)
        initial_epoch, history = self.restore(model)
        summary: list[str] = []
        model.summary(print_fn=lambda line, **kw: summary.append(line))
        self.ctx.log(
            f"Network: {model.name}, {model.count_params():,} parameters, input {self.input_shape}, {self.num_classes} classes"
        )
        self.ctx.metric("steps_per_epoch", self.steps_per_epoch, step=0)
        reporter = MetricsReporter(self, epochs, initial_epoch, history)
        self.ctx.status(f"Training from epoch {initial_epoch + 1}" if initial_epoch else "Training")
        with sysmetrics.sampling(self.ctx):
            self._fit(model, train, val, epochs, initial_epoch, reporter)
        self.ctx.check_abort()
        return self._result(model, reporter, initial_epoch, summary, info)

    def _fit(self, model, train, val, epochs, initial_epoch, reporter) -> None:
        model.fit(
            train,
            validation_data=val,
            validation_freq=self.solver["val_interval"],
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=[reporter],
            verbose=0,
            shuffle=False,  # the pipeline shuffles (with the run's seed)
        )

    def _result(self, model, reporter, initial_epoch, summary, info) -> dict[str, Any]:
        return {
            "epochs": reporter.epochs,
            "best_epoch": self.task.best_epoch(reporter.epochs),
            "task": self.task.name,
            "snapshots": snapshots.epochs(self.model_id),
            "resumed_from": initial_epoch,
            "param_count": int(model.count_params()),
            "summary": "\n".join(summary),
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "label_names": info.manifest.get("label_names"),
            "steps_per_epoch": self.steps_per_epoch,
        }

    def _pipelines(self, info, seed):
        """The train and (when the dataset has one) val pipelines; sets ``steps_per_epoch``."""
        from apps.mlmodels import data

        stages, batch = info.manifest["stages"], self.solver["batch_size"]
        augmentation = {**AUGMENTATION_DEFAULTS, **self.solver.get("augmentation", {})}
        train = data.stage_pipeline(
            info,
            "train",
            batch_size=batch,
            training=True,
            shuffle=self.solver["shuffle"],
            seed=seed,
            augment=self.task.pipeline_augmentation(augmentation),
        )
        val = None
        if stages.get("val", {}).get("count", 0) > 0:
            val = data.stage_pipeline(
                info, "val", batch_size=batch, training=False, shuffle=False, seed=0
            )
        self.steps_per_epoch = max(1, -(-stages["train"]["count"] // batch))
        return train, val

    def _compiled_model(self, info, max_iter: int):
        """The network with its optimizer and metrics, on every GPU the job has."""
        import tensorflow as tf

        strategy = (
            tf.distribute.MirroredStrategy()
            if len(tf.config.list_logical_devices("GPU")) > 1
            else tf.distribute.get_strategy()
        )
        with strategy.scope():
            model = self.build_model(info)
            optimizer = self.optimizer(max_iter)
            model.compile(
                optimizer=optimizer,
                loss=self.task.loss(self.solver, self.num_classes),
                metrics=self.task.metrics(self.num_classes),
            )
            # Its variables made now, on the strategy's devices: Keras makes them lazily
            # inside the first training step's graph, which took a third of that trace's
            # time (2.3 s of 7 s for the U-Net on a CPU).
            optimizer.build(model.trainable_variables)
        return model

    def build_model(self, info):
        from apps.mlmodels import networks

        network, task = self.params["network"], self.task
        source = network["source"]
        check = partial(
            task.check_output, input_shape=self.input_shape, num_classes=self.num_classes
        )
        if source == "standard":
            if network["name"] not in task.networks:
                raise networks.NetworkError(
                    f"{network['name']} is not a {task.name} network; choose one of "
                    f"{', '.join(task.networks)}."
                )
            core = networks.standard(network["name"], self.input_shape, self.num_classes)
        elif source == "custom":
            core = networks.custom(network["code"], self.input_shape, self.num_classes, check)
        else:
            core = task.new_head(self._load_source_model(network), self.num_classes)
        check(core)
        inputs = keras.Input(self.input_shape, name="image")
        x = self._preprocessing(info)(inputs)
        augmentation = self._augmentation()
        if augmentation is not None:
            x = augmentation(x)
        outputs = core(x)
        return keras.Model(inputs, outputs, name=core.name)

    def _load_source_model(self, network):
        """An uploaded .keras file or an earlier model's snapshot, loaded in safe mode."""
        from apps.core.storage import get_store

        path = self.workdir / "source.keras"
        if network["source"] == "upload":
            path.write_bytes(get_store().get(network["upload_key"]))
        else:
            folder = self.workdir / "source"
            epoch = network.get("previous_epoch") or snapshots.epochs(network["previous_model"])[-1]
            snapshots.extract(network["previous_model"], epoch, folder)
            path = folder / "model.keras"
        model = keras.models.load_model(path, compile=False, safe_mode=True)
        # A platform snapshot wraps preprocessing around the network: fine-tune the network.
        inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        return inner[-1] if network["source"] == "previous" and inner else model

    def _preprocessing(self, info):
        return preprocessing_layer(
            self.solver["mean_subtraction"], self.mean_image(info), tasks.input_peak(info.manifest)
        )

    def mean_image(self, info) -> np.ndarray | None:
        """The dataset's mean image (HWC float32), or None when the dataset has none."""
        from apps.datasets import shards

        mean_info = info.manifest.get("mean")
        if self.solver["mean_subtraction"] == "none" or not mean_info:
            return None
        return np.load(shards.local_copy(info, mean_info["npy"])).astype(np.float32)

    def _augmentation(self):
        from keras import layers

        aug = {**AUGMENTATION_DEFAULTS, **self.solver.get("augmentation", {})}
        # Augmentation that moves pixels must move a mask label with them: for such tasks
        # it is done by the input pipeline (``Task.pipeline_augmentation``), not here.
        aug = {k: v if k in self.task.model_augmentation() else False for k, v in aug.items()}
        steps = []
        flips = ("horizontal" if aug["flip_horizontal"] else "") + (
            "_and_vertical"
            if aug["flip_vertical"] and aug["flip_horizontal"]
            else "vertical"
            if aug["flip_vertical"]
            else ""
        )
        if flips:
            steps.append(layers.RandomFlip(flips))
        if aug["rotation_degrees"]:
            steps.append(layers.RandomRotation(aug["rotation_degrees"] / 360.0))
        if aug["crop_percent"]:
            steps.append(layers.RandomZoom((-aug["crop_percent"] / 100.0, 0)))
        if aug["contrast"]:
            steps.append(layers.RandomContrast(aug["contrast"], value_range=(-1, 1)))
        if aug["hue"] and self.input_shape[-1] == 3:
            steps.append(layers.RandomHue(aug["hue"], value_range=(-1, 1)))
        if aug["noise_stddev"]:
            steps.append(layers.GaussianNoise(aug["noise_stddev"] / 255.0))
        return keras.Sequential(steps, name="augmentation") if steps else None

    def optimizer(self, max_iter: int):
        from apps.mlmodels.schedule import DigitsSchedule

        s = self.solver
        lr = self.schedule = DigitsSchedule(
            policy=s["policy"], base_lr=s["base_lr"], max_iter=max_iter, gamma=s["gamma"],
            power=s["power"], step_size=s["step_size"], step_values=list(s["step_values"]),
        )  # fmt: skip
        decay = s["weight_decay"] or None
        name = s["optimizer"]
        if name in ("sgd", "momentum", "nesterov"):
            momentum = 0.0 if name == "sgd" else s["momentum"]
            return keras.optimizers.SGD(
                lr, momentum=momentum, nesterov=name == "nesterov", weight_decay=decay
            )
        cls = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop,
               "adagrad": keras.optimizers.Adagrad, "adadelta": keras.optimizers.Adadelta}[name]  # fmt: skip
        return cls(lr, weight_decay=decay)

    # --- snapshots -------------------------------------------------------------------------
    def restore(self, model) -> tuple[int, list[dict[str, Any]]]:
        """Continue from the last snapshot on a retry or when resuming.

        Returns the snapshot's epoch and the per-epoch metrics of the run up to it.
        """
        saved = snapshots.epochs(self.model_id)
        if not saved or not (self.params.get("resume") or self.ctx.attempt > 1):
            return 0, []
        epoch = saved[-1]
        folder = self.workdir / "restore"
        state = snapshots.extract(self.model_id, epoch, folder)
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)  # built: the file's optimizer state loads
        model.load_weights(snapshots.weights_file(folder))
        older = folder / "optimizer.npz"  # a snapshot written before model.keras alone
        if older.exists():
            with np.load(older) as saved_vars:
                values = [saved_vars[f"v{i}"] for i in range(len(saved_vars.files))]
            if len(values) != len(optimizer.variables):
                raise RuntimeError("The snapshot's optimizer state does not match the network.")
            for variable, value in zip(optimizer.variables, values, strict=True):
                variable.assign(value)
        elif int(optimizer.iterations.numpy()) != state["iterations"]:
            # Keras skips (with a warning) an optimizer state of another shape.
            raise RuntimeError("The snapshot's optimizer state does not match the network.")
        self.ctx.log(
            f"Resumed from the snapshot of epoch {epoch} (iteration {state['iterations']})."
        )
        history = state.get("history") or [{**state.get("metrics", {}), "epoch": epoch}]
        return epoch, [row for row in history if row.get("epoch", 0) <= epoch]

    def snapshot(
        self, model, epoch: int, metrics: dict[str, Any], history: list[dict[str, Any]]
    ) -> None:
        """Save the model at ``epoch``; ``history`` is every epoch's metrics up to it."""
        folder = self.workdir / f"snapshot-{epoch}"
        folder.mkdir()
        model.save(folder / "model.keras")  # weights and optimizer state included
        state = {
            "epoch": epoch,
            "iterations": int(model.optimizer.iterations.numpy()),
            "metrics": metrics,
            "history": history,
        }
        (folder / "state.json").write_text(json.dumps(state))
        snapshots.save(self.model_id, epoch, folder, self.ctx.staging_prefix)
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def preprocessing_layer(mode: str, mean: np.ndarray | None, peak: float = 255.0):
    """The model's first layer: raw pixels (0..``peak``) to what the network trains on."""
    if mode == "none" or mean is None:
        return keras.layers.Rescaling(1 / peak, name="scale")
    if mode == "pixel":
        mean = mean.mean(axis=(0, 1))
        return keras.layers.Normalization(
            axis=-1, mean=mean, variance=np.full_like(mean, peak**2), name="mean_pixel"
        )
    return keras.layers.Normalization(
        axis=(1, 2, 3), mean=mean, variance=np.full_like(mean, peak**2), name="mean_image"
    )


class MetricsReporter(keras.callbacks.Callback):
    """Streams metrics, progress and resource use; takes snapshots; stops on abort."""

    def __init__(
        self, trainer: Trainer, epochs: int, initial_epoch: int,
        history: list[dict[str, Any]] | None = None,
    ):  # fmt: skip
        super().__init__()
        self.trainer, self.ctx = trainer, trainer.ctx
        self.total_epochs = epochs
        self.initial_epoch = initial_epoch
        self.every = trainer.solver["metrics_every"]
        self.snapshot_interval = trainer.solver["snapshot_interval"]
        self.batch_size = trainer.solver["batch_size"]
        # A resumed run's result lists the epochs before the snapshot it continued from too.
        self.epochs: list[dict[str, Any]] = list(history or [])
        self.process = psutil.Process()
        self.window_start = time.perf_counter()
        self.window_steps = 0
        self.started = time.monotonic()

    def _iteration(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_train_begin(self, logs=None):
        # Counted here rather than read from the optimizer after every batch: reading the
        # variable costs more than the rest of this callback when nothing is reported.
        self.iteration = self._iteration()

    def on_train_batch_end(self, batch, logs=None):
        self.iteration += 1
        self.window_steps += 1
        if self.ctx.stopping:
            self.model.stop_training = True
            return
        iteration = self.iteration
        if iteration % self.every:
            return
        now = time.perf_counter()
        speed = self.window_steps * self.batch_size / max(now - self.window_start, 1e-9)
        self.window_start, self.window_steps = now, 0
        lr = self.trainer.schedule.value(iteration)
        for series, value in self.trainer.task.batch_series(logs).items():
            self.ctx.metric(series, value, step=iteration)
        self.ctx.metric("lr", lr, step=iteration)
        self.ctx.metric("images_per_sec", speed, step=iteration)
        epochs_done = iteration / self.trainer.steps_per_epoch
        self._progress(epochs_done)

    def _progress(self, epochs_done: float) -> None:
        epochs_done = min(epochs_done, self.total_epochs)
        done = epochs_done - self.initial_epoch
        remaining = self.total_epochs - epochs_done
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * remaining if done > 0 else None
        self.ctx.progress(
            epochs_done / self.total_epochs,
            eta_seconds=eta,
            text=f"Epoch {epochs_done:.2f} of {self.total_epochs}",
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        number = epoch + 1
        self.iteration = iteration = self._iteration()
        if iteration < number * self.trainer.steps_per_epoch:
            # Keras ends the epoch early when the job is aborted: a partial epoch is
            # neither recorded nor snapshotted (a resume would skip its missing steps).
            self.model.stop_training = True
            return
        task = self.trainer.task
        row = {"epoch": number, **task.epoch_row(logs)}
        for series, value in task.epoch_series(row).items():
            self.ctx.metric(series, value, step=iteration)
        self.ctx.metric("epoch", number, step=iteration)
        self.ctx.metric("cpu_percent", self.process.cpu_percent(interval=None), step=iteration)
        self.ctx.metric("memory_mb", self.process.memory_info().rss / 2**20, step=iteration)
        _report_gpus(self.ctx, iteration)
        if number % self.snapshot_interval == 0 or number == self.total_epochs:
            row["snapshot"] = True
            self.trainer.snapshot(self.model, number, row, [*self.epochs, row])
        self.epochs.append(row)
        self.ctx.epoch(number, row, iteration)
        described = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float))
        self.ctx.log(f"Epoch {number}: {described}")
        self._progress(number)
        if self.ctx.stopping:
            self.model.stop_training = True


def _report_gpus(ctx, iteration: int) -> None:
    """GPU use and memory through NVML, when the node has it."""
    try:
        import pynvml
    except ImportError:
        return
    try:
        pynvml.nvmlInit()
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            ctx.metric(
                f"gpu{index}/utilization",
                pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,
                step=iteration,
            )
            ctx.metric(
                f"gpu{index}/memory_mb",
                pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20,
                step=iteration,
            )
    except pynvml.NVMLError:
        return
