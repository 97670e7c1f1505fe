"""Task types: what a dataset's labels mean, and everything about training that follows.

A data plugin declares its task (``DataIngestion.get_task()``: ``"classification"``,
``"segmentation"``; ``"detection"`` and ``"regression"`` are reserved), the dataset
build records it as ``manifest["task"]``, and ``task_of(manifest)`` gives the one
``Task`` that decides, for that dataset: the standard networks offered, the loss,
the metrics and how they are reported, the epoch that is best, the solver options that
apply, the columns and curves of the model pages, and ``postprocess`` — the answer one
network output becomes. Callers ask the task; they never test its name.

Importable in the web process: TensorFlow is imported inside the methods that run in
job processes only (``loss``, ``metrics``, ``check_output``, ``new_head``,
``pipeline_augmentation``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

#: The augmentation options that move pixels (applied to image and mask alike).
GEOMETRIC_AUGMENTATION = ("flip_horizontal", "flip_vertical", "rotation_degrees", "crop_percent")
#: The ones that change intensities only (the image's, never a label's).
INTENSITY_AUGMENTATION = ("noise_stddev", "contrast", "hue")


class TaskError(Exception):
    """A dataset of this task cannot be trained (yet); the message says why."""


class Task:
    """One task type. Subclasses fill in the class attributes and the job-process methods."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: Whether the platform can train networks for this task.
    trains: ClassVar[bool] = True
    #: Standard networks: name → description (built by ``apps.mlmodels.networks``).
    networks: ClassVar[dict[str, str]] = {}
    default_network: ClassVar[str] = ""
    #: Solver options that only some tasks take (``params.TASK_SOLVER_OPTIONS``) and this
    #: one does.
    solver_options: ClassVar[tuple[str, ...]] = ()
    #: The epoch-row key (a validation figure, higher is better) that picks the best epoch.
    best_metric: ClassVar[str] = ""
    best_metric_title: ClassVar[str] = ""
    #: Per-epoch figures the model page and the compare page show: row key → title.
    curves: ClassVar[dict[str, str]] = {}

    def __str__(self) -> str:
        return self.name

    # --- pages ------------------------------------------------------------------------
    def epoch_columns(self, label_names: list[str] | None) -> list[tuple[str, str]]:
        """``(row key, title)`` of the model page's epoch table."""
        return list(self.curves.items())

    def best_epoch(self, epochs: list[dict[str, Any]]) -> int | None:
        """The validated epoch with the highest ``best_metric`` (lowest validation loss on a
        tie); without validation, the epoch of the lowest training loss."""
        key = self.best_metric
        scored = [e for e in epochs if _finite(e.get(key))]
        if scored:
            return max(scored, key=lambda e: (e[key], -e.get("val_loss", 0)))["epoch"]
        return min(epochs, key=lambda e: e["loss"])["epoch"] if epochs else None

    # --- the job process ----------------------------------------------------------------
    def loss(self, solver: dict[str, Any], num_classes: int):
        raise NotImplementedError

    def metrics(self, num_classes: int) -> list:
        raise NotImplementedError

    def check_output(self, model, input_shape, num_classes: int) -> None:
        """``NetworkError`` unless ``model``'s output suits this task."""
        raise NotImplementedError

    def new_head(self, model, num_classes: int):
        """Fine-tuning: ``model`` with an output layer for ``num_classes`` classes."""
        raise NotImplementedError

    def model_augmentation(self) -> tuple[str, ...]:
        """The augmentation options done by layers of the model (on the image only)."""
        return GEOMETRIC_AUGMENTATION + INTENSITY_AUGMENTATION

    def pipeline_augmentation(self, augmentation: dict[str, Any]):
        """A ``(image, label, seed) -> (image, label)`` function for the input pipeline, for
        augmentation that must change the label too; ``None`` when there is none."""
        return None

    def batch_series(self, logs: dict[str, Any]) -> dict[str, float]:
        """Metric series reported every ``metrics_every`` steps, from Keras' running logs."""
        raise NotImplementedError

    def epoch_row(self, logs: dict[str, Any]) -> dict[str, float]:
        """The figures of one finished epoch (the result's ``epochs`` rows), from its logs."""
        raise NotImplementedError

    def epoch_series(self, row: dict[str, Any]) -> dict[str, float]:
        """Metric series reported once per epoch, from its row."""
        return {
            key.replace("val_", "val/", 1): value
            for key, value in row.items()
            if key.startswith("val_") and _finite(value)
        }

    # --- inference ----------------------------------------------------------------------
    def postprocess(self, outputs: np.ndarray, **options: Any) -> dict[str, Any]:
        """The answer for ONE input from the network's raw ``outputs`` for it."""
        raise NotImplementedError


class Classification(Task):
    name = "classification"
    title = "Classification"
    networks = {
        "lenet": "LeNet (28×28-class inputs, digits)",
        "alexnet": "AlexNet (reduced for small inputs)",
        "resnet": "ResNet-20 (CIFAR-style residual network)",
        "mobilenet_v2": "MobileNetV2 (keras.applications, inputs ≥ 32×32)",
    }
    default_network = "lenet"
    best_metric, best_metric_title = "val_accuracy", "Validation accuracy"
    curves = {
        "val_accuracy": "Validation accuracy",
        "val_loss": "Validation loss",
        "loss": "Training loss",
        "accuracy": "Training accuracy",
    }

    def epoch_columns(self, label_names):
        return [("loss", "Loss"), ("accuracy", "Accuracy"), ("val_loss", "Val loss"),
                ("val_accuracy", "Val accuracy"), ("val_top5", "Val top-5")]  # fmt: skip

    def loss(self, solver, num_classes):
        return "sparse_categorical_crossentropy"

    def metrics(self, num_classes):
        import keras

        top_k = min(5, num_classes)
        return ["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=top_k, name="top5")]

    def check_output(self, model, input_shape, num_classes):
        from apps.mlmodels.networks import NetworkError, check_model

        check_model(model)
        shape = tuple(model.output_shape)
        if len(shape) != 2 or shape[-1] != num_classes:
            raise NetworkError(
                f"The network's output shape is {shape}; it must be (None, {num_classes}) "
                f"— one score per class."
            )

    def new_head(self, model, num_classes):
        import keras

        if tuple(model.output_shape)[-1] == num_classes:
            return model
        features = model.layers[-2].output
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="digits_head")(
            features
        )
        return keras.Model(model.inputs, outputs, name=f"{model.name}_finetuned")

    def batch_series(self, logs):
        return {"train/loss": float(logs["loss"]), "train/accuracy": float(logs["accuracy"])}

    def epoch_row(self, logs):
        row = {
            "loss": float(logs.get("loss", np.nan)),
            "accuracy": float(logs.get("accuracy", np.nan)),
        }
        row.update(
            {
                key: float(logs[key])
                for key in ("val_loss", "val_accuracy", "val_top5")
                if key in logs
            }
        )
        return row  # fmt: skip

    def postprocess(self, outputs, *, top_n: int = 5, label_names=None, **options):
        """``{"predictions": [{"index", "label", "probability"}, ...]}``, best first."""
        probabilities = np.asarray(outputs, dtype=np.float64).reshape(-1)
        names = label_names or [str(i) for i in range(len(probabilities))]
        order = np.argsort(probabilities)[::-1][:top_n]
        return {
            "predictions": [
                {"index": int(i), "label": names[i], "probability": float(probabilities[i])}
                for i in order
            ]
        }


class Segmentation(Task):
    name = "segmentation"
    title = "Segmentation"
    networks = {
        "unet": "U-Net (small; height and width divisible by 8)",
        "fcn_alexnet": "FCN-AlexNet (fully convolutional AlexNet, inputs ≥ 32×32)",
    }
    default_network = "unet"
    solver_options = ("class_weights", "dice_loss")
    best_metric, best_metric_title = "val_dice", "Validation Dice"
    curves = {
        "val_dice": "Validation Dice",
        "val_mean_iou": "Validation mean IoU",
        "val_loss": "Validation loss",
        "loss": "Training loss",
        "dice": "Training Dice",
    }
    #: Per-epoch figures (each also with ``val_``): summary ones and per-class ones.
    FIGURES = ("loss", "pixel_accuracy", "mean_iou", "dice")

    def epoch_columns(self, label_names):
        columns = [("loss", "Loss"), ("pixel_accuracy", "Pixel accuracy"), ("dice", "Dice"),
                   ("val_loss", "Val loss"), ("val_pixel_accuracy", "Val pixel accuracy"),
                   ("val_mean_iou", "Val mean IoU"), ("val_dice", "Val Dice")]  # fmt: skip
        for index, name in enumerate(label_names or []):
            columns.append((f"val_dice_{index}", f"Val Dice {name}"))
        return columns

    def loss(self, solver, num_classes):
        from apps.mlmodels import segmentation

        return segmentation.loss(solver.get("class_weights") or [], solver.get("dice_loss") or 0)

    def metrics(self, num_classes):
        from apps.mlmodels.segmentation import ConfusionMatrix

        return [ConfusionMatrix(num_classes)]

    def check_output(self, model, input_shape, num_classes):
        from apps.mlmodels.networks import NetworkError, check_model

        check_model(model)
        shape, want = tuple(model.output_shape), (None, *tuple(input_shape)[:2], num_classes)
        if shape != want:
            raise NetworkError(
                f"The network's output shape is {shape}; it must be {want} — per pixel, one "
                f"score per class (a softmax over the last axis)."
            )

    def new_head(self, model, num_classes):
        import keras

        if tuple(model.output_shape)[-1] == num_classes:
            return model
        features = model.layers[-2].output
        outputs = keras.layers.Conv2D(num_classes, 1, activation="softmax", name="digits_head")(
            features
        )
        return keras.Model(model.inputs, outputs, name=f"{model.name}_finetuned")

    def model_augmentation(self):
        return INTENSITY_AUGMENTATION

    def pipeline_augmentation(self, augmentation):
        from apps.mlmodels import segmentation

        return segmentation.joint_augmentation(augmentation)

    def batch_series(self, logs):
        matrix = np.asarray(logs["confusion"], dtype=np.float64)
        return {
            "train/loss": float(logs["loss"]),
            "train/pixel_accuracy": confusion_figures(matrix)["pixel_accuracy"],
        }

    def epoch_row(self, logs):
        row = {"loss": float(logs.get("loss", np.nan))}
        for prefix in ("", "val_"):
            if prefix + "confusion" in logs:
                matrix = np.asarray(logs[prefix + "confusion"], dtype=np.float64)
                figures = confusion_figures(matrix)
                row.update({prefix + key: value for key, value in figures.items()})
        if "val_loss" in logs:
            row["val_loss"] = float(logs["val_loss"])
        return {key: value for key, value in row.items() if _finite(value)}  # JSON has no NaN

    def epoch_series(self, row):
        return {
            key.replace("val_", "val/", 1) if key.startswith("val_") else f"train/{key}": value
            for key, value in row.items()
            if _finite(value) and key not in ("loss", "pixel_accuracy")
        }

    def postprocess(self, outputs, *, label_names=None, **options):
        """``{"mask": uint8 (H, W) class per pixel, "pixel_counts": {class name: pixels}}``."""
        scores = np.asarray(outputs)
        mask = np.argmax(scores, axis=-1).astype(np.uint8)
        counts = np.bincount(mask.reshape(-1), minlength=scores.shape[-1])
        names = label_names or [str(i) for i in range(scores.shape[-1])]
        return {"mask": mask, "pixel_counts": {names[i]: int(c) for i, c in enumerate(counts)}}


def confusion_figures(matrix: np.ndarray) -> dict[str, float]:
    """Pixel accuracy, IoU and Dice from a (classes × classes) confusion matrix of pixel
    counts (rows: true class, columns: predicted class), or the same flattened.

    Per class ``c``: IoU = TP / (TP + FP + FN), Dice = 2 TP / (2 TP + FP + FN), as
    ``iou_<c>`` and ``dice_<c>``; a class absent from both truth and prediction has
    neither (NaN, left out). ``mean_iou`` averages IoU over every class present;
    ``dice`` averages Dice over the foreground classes (all but class 0, the
    background) — with two classes, the Dice of the object.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim == 1:  # as ``ConfusionMatrix.result()`` gives it
        side = math.isqrt(matrix.size)
        matrix = matrix.reshape(side, side)
    tp = np.diag(matrix)
    fp, fn = matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (tp + fp + fn)
        dice = 2 * tp / (2 * tp + fp + fn)
    total = matrix.sum()
    figures = {"pixel_accuracy": float(tp.sum() / total) if total else math.nan}
    foreground = dice[1:] if len(dice) > 1 else dice
    figures["mean_iou"] = _nanmean(iou)
    figures["dice"] = _nanmean(foreground)
    for index in range(len(tp)):
        figures[f"iou_{index}"] = float(iou[index])
        figures[f"dice_{index}"] = float(dice[index])
    return figures


def _nanmean(values: np.ndarray) -> float:
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else math.nan


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def input_peak(manifest: dict[str, Any]) -> float:
    """The largest pixel value of the dataset's features: preprocessing divides by it.

    ``feature.max_value`` where the dataset type records one (e.g. 12-bit values kept in
    16 bits), else the dtype's: 255 for 8-bit features, 65535 for 16-bit ones.
    """
    feature = manifest.get("feature", {})
    if feature.get("max_value"):
        return float(feature["max_value"])
    return 65535.0 if feature.get("dtype") == "uint16" else 255.0


class Untrained(Task):
    """A task the platform knows the name of but cannot train for yet."""

    trains = False

    def __init__(self, name: str):
        self.name = name  # type: ignore[misc]
        self.title = name.capitalize()  # type: ignore[misc]


TASKS: dict[str, Task] = {task.name: task for task in (Classification(), Segmentation())}
#: What the label kind of a manifest built before tasks were recorded means.
_TASK_OF_LABEL_KIND = {"class": "classification", "mask": "segmentation"}


def task_of(manifest: dict[str, Any] | None) -> Task:
    """The task of a built dataset: ``manifest["task"]``, else the one its labels imply."""
    manifest = manifest or {}
    name = manifest.get("task") or _TASK_OF_LABEL_KIND.get(
        (manifest.get("label") or {}).get("kind"), "classification"
    )
    return get(name)


def get(name: str) -> Task:
    """The task called ``name``; an ``Untrained`` one for a name without training."""
    return TASKS.get(name) or Untrained(name)


def check_trainable(task: Task) -> None:
    if not task.trains:
        raise TaskError(
            f"Datasets of the task “{task.name}” cannot be trained yet: the platform trains "
            f"{' and '.join(TASKS)} networks."
        )


def all_networks() -> dict[str, str]:
    """Every task's standard networks (validation before the dataset is known)."""
    return {name: label for task in TASKS.values() for name, label in task.networks.items()}
