"""Network architectures: the standard ones, and the user's own code.

Runs only in job processes (it imports TensorFlow). Every builder takes the
input shape ``(height, width, channels)`` and the number of classes and returns
an uncompiled Keras model ending in a softmax over the classes; inputs are
float images already preprocessed (see ``apps.mlmodels.kinds``).
"""

from __future__ import annotations

import linecache
import traceback
import types

import keras
from keras import layers


class NetworkError(Exception):
    """The network could not be built; the message is meant for the user."""


def lenet(input_shape, num_classes):
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(20, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.Conv2D(50, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.Flatten(),
            layers.Dense(500, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="lenet",
    )


def alexnet(input_shape, num_classes):
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(64, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.BatchNormalization(),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.Conv2D(192, 3, padding="same", activation="relu"),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="alexnet",
    )


def resnet(input_shape, num_classes, blocks_per_stage=3):
    def block(x, filters, stride):
        shortcut = x
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        y = layers.BatchNormalization()(y)
        y = layers.Activation("relu")(y)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
            shortcut = layers.BatchNormalization()(shortcut)
        return layers.Activation("relu")(layers.Add()([y, shortcut]))

    inputs = keras.Input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    for stage, filters in enumerate((16, 32, 64)):
        for i in range(blocks_per_stage):
            x = block(x, filters, 2 if stage > 0 and i == 0 else 1)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="resnet20")


def mobilenet_v2(input_shape, num_classes):
    if min(input_shape[:2]) < 32:
        raise NetworkError("MobileNetV2 needs images of at least 32×32 pixels.")
    return keras.applications.MobileNetV2(
        input_shape=input_shape, weights=None, classes=num_classes, classifier_activation="softmax"
    )


BUILDERS = {"lenet": lenet, "alexnet": alexnet, "resnet": resnet, "mobilenet_v2": mobilenet_v2}


def standard(name: str, input_shape, num_classes) -> keras.Model:
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise NetworkError(f"Unknown standard network {name!r}.") from None
    return builder(tuple(input_shape), num_classes)


CUSTOM_FILENAME = "<network.py>"


def custom(code: str, input_shape, num_classes) -> keras.Model:
    """Run the user's module and call its ``build_model(input_shape, num_classes)``.

    Errors carry the user's traceback (frames of their code only), so the job
    page shows where their network went wrong.
    """
    module = types.ModuleType("user_network")
    module.__file__ = CUSTOM_FILENAME
    # Lets tracebacks show the text of the user's lines, not only their numbers.
    linecache.cache[CUSTOM_FILENAME] = (len(code), None, code.splitlines(True), CUSTOM_FILENAME)
    try:
        exec(compile(code, CUSTOM_FILENAME, "exec"), module.__dict__)  # noqa: S102  job process only
        build = getattr(module, "build_model", None)
        if not callable(build):
            raise NetworkError(
                "The network code must define build_model(input_shape, num_classes)."
            )
        model = build(tuple(input_shape), num_classes)
    except NetworkError:
        raise
    except Exception as exc:
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if f.filename == CUSTOM_FILENAME
        ]
        where = "".join(traceback.format_list(frames))
        if isinstance(exc, SyntaxError):
            where = (
                f'  File "{CUSTOM_FILENAME}", line {exc.lineno}\n    {(exc.text or "").strip()}\n'
            )
        raise NetworkError(
            f"Your network code raised {type(exc).__name__}: {exc}\n{where}".rstrip()
        ) from exc
    check_output(model, num_classes)
    return model


def check_output(model, num_classes: int) -> None:
    if not isinstance(model, keras.Model):
        raise NetworkError(f"build_model must return a keras.Model, not {type(model).__name__}.")
    shape = tuple(model.output_shape)
    if len(shape) != 2 or shape[-1] != num_classes:
        raise NetworkError(
            f"The network's output shape is {shape}; it must be (None, {num_classes}) "
            f"— one score per class."
        )


def with_new_head(model: keras.Model, num_classes: int) -> keras.Model:
    """Fine-tuning: keep everything up to the last layer, add a fresh classifier."""
    if tuple(model.output_shape)[-1] == num_classes:
        return model
    features = model.layers[-2].output
    outputs = layers.Dense(num_classes, activation="softmax", name="digits_head")(features)
    return keras.Model(model.inputs, outputs, name=f"{model.name}_finetuned")
