"""Network architectures: the standard ones, and the user's own code.

Runs only in job processes (it imports TensorFlow). Every builder takes the
input shape ``(height, width, channels)`` and the number of classes and returns
an uncompiled Keras model ending in a softmax over the classes — per image for
classification networks, per pixel (``(H, W, classes)``) for segmentation ones; inputs
are float images already preprocessed (see ``apps.mlmodels.kinds``). Which task a
network is for is listed in ``apps.mlmodels.tasks``.
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


def _conv_block(x, filters):
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # Momentum 0.9, not 0.99: small datasets give few steps per epoch, and the moving
        # statistics validation uses must catch up within a few epochs.
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Activation("relu")(x)
    return x


def unet(input_shape, num_classes, base_filters=16, depth=3):
    """A small U-Net (Ronneberger et al. 2015): ``depth`` down and up steps with skip
    connections, ``base_filters`` doubling per step; trains on a CPU at 64×64..256×256."""
    height, width = input_shape[:2]
    if height % 2**depth or width % 2**depth:
        raise NetworkError(
            f"U-Net needs a height and width divisible by {2**depth}; the images are "
            f"{width}×{height} (resize them in the dataset, or use FCN-AlexNet)."
        )
    inputs = keras.Input(input_shape)
    x, skips = inputs, []
    for level in range(depth):
        x = _conv_block(x, base_filters * 2**level)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = _conv_block(x, base_filters * 2**depth)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(base_filters * 2**level, 2, strides=2, padding="same")(x)
        x = _conv_block(layers.Concatenate()([x, skips[level]]), base_filters * 2**level)
    outputs = layers.Conv2D(num_classes, 1, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name="unet")


def fcn_alexnet(input_shape, num_classes):
    """DIGITS' FCN-AlexNet in spirit (Long et al. 2015, FCN-32s on AlexNet): AlexNet's
    convolutions (narrower, for a CPU), its fully connected layers as convolutions, a
    1×1 class score and one learned 32× upsampling, cropped to the input size."""
    height, width = input_shape[:2]
    if min(height, width) < 32:
        raise NetworkError("FCN-AlexNet needs images of at least 32×32 pixels.")
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(48, 11, strides=4, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.Conv2D(128, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for filters in (192, 192, 128):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.Conv2D(512, 3, padding="same", activation="relu", name="fc6")(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv2D(512, 1, activation="relu", name="fc7")(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv2D(num_classes, 1, name="score")(x)
    x = layers.Conv2DTranspose(num_classes, 64, strides=32, padding="same", name="upscore")(x)
    up_height, up_width = -(-height // 32) * 32, -(-width // 32) * 32
    x = layers.Cropping2D(((0, up_height - height), (0, up_width - width)))(x)
    outputs = layers.Softmax(name="scores")(x)
    return keras.Model(inputs, outputs, name="fcn_alexnet")


BUILDERS = {"lenet": lenet, "alexnet": alexnet, "resnet": resnet, "mobilenet_v2": mobilenet_v2,
            "unet": unet, "fcn_alexnet": fcn_alexnet}  # fmt: skip


def standard(name: str, input_shape, num_classes) -> keras.Model:
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise NetworkError(f"Unknown standard network {name!r}.") from None
    return builder(tuple(input_shape), num_classes)


CUSTOM_FILENAME = "<network.py>"


def custom(code: str, input_shape, num_classes, check=None) -> keras.Model:
    """Run the user's module and call its ``build_model(input_shape, num_classes)``.

    ``check(model)`` raises ``NetworkError`` when the output does not suit the task.

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
    if check is not None:
        check(model)
    return model


def check_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise NetworkError(f"build_model must return a keras.Model, not {type(model).__name__}.")
