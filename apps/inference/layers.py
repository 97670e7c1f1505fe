"""DIGITS' "visualizations and statistics" of one input, computed in the model process.

Per layer of the network: its output shape, its weights and its activations for the
input as image grids (one tile per filter or channel, at most ``MAX_TILES``, scaled to at
most ``MAX_SIDE`` pixels a side) with mean, standard deviation and a ``BINS``-bin
histogram. Bounded: at most ``MAX_LAYERS`` layers, so the answer stays well under a
megabyte whatever the network.
"""

from __future__ import annotations

import math

import numpy as np

MAX_LAYERS = 32
MAX_TILES = 64
MAX_SIDE = 256
BINS = 20


def statistics(values: np.ndarray) -> dict:
    values = values.astype(np.float64, copy=False).ravel()
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"mean": None, "std": None, "histogram": {"counts": [], "edges": []}}
    counts, edges = np.histogram(finite, bins=BINS)
    return {
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "histogram": {"counts": counts.tolist(), "edges": [float(e) for e in edges]},
    }


def grid(maps: np.ndarray) -> np.ndarray:
    """``maps`` (n, h, w) as one uint8 image: tiles in rows, scaled to 0..255 together."""
    maps = maps[:MAX_TILES].astype(np.float32)
    count, height, width = maps.shape
    low, high = float(np.nanmin(maps)), float(np.nanmax(maps))
    scaled = (maps - low) / (high - low) if high > low else np.zeros_like(maps)
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    image = np.zeros((rows * (height + 1) - 1, columns * (width + 1) - 1), np.float32)
    for i, tile in enumerate(scaled):
        top, left = (i // columns) * (height + 1), (i % columns) * (width + 1)
        image[top : top + height, left : left + width] = tile
    step = max(1, math.ceil(max(image.shape) / MAX_SIDE))
    return (np.nan_to_num(image[::step, ::step]) * 255).round().astype(np.uint8)


def _as_maps(values: np.ndarray) -> np.ndarray:
    """Filters or channels as (n, h, w): conv kernels by output filter, feature maps by
    channel, vectors as one near-square map."""
    if values.ndim == 4:  # conv kernel (kh, kw, in, out): each filter, its inputs averaged
        return np.moveaxis(values.mean(axis=2), -1, 0)
    if values.ndim == 3:  # activations (h, w, channels)
        return np.moveaxis(values, -1, 0)
    if values.ndim == 2:  # dense kernel (in, out)
        return values.T[None]
    flat = values.ravel()
    side = math.ceil(math.sqrt(max(flat.size, 1)))
    return np.pad(flat, (0, side * side - flat.size)).reshape(1, side, side)


def _network(model):
    """The network inside the platform's wrapper (preprocessing layers, then the network)."""
    import keras

    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return inner[-1] if inner else model


def _probe(model):
    """A function from raw input to every layer's output, built once per cached model."""
    import keras

    network = _network(model)
    shown = [layer for layer in network.layers if not isinstance(layer, keras.layers.InputLayer)]
    shown = shown[:MAX_LAYERS]
    before = [layer for layer in model.layers[1:] if layer is not network]
    outputs = keras.Model(network.inputs, [layer.output for layer in shown])

    def run(x):
        for layer in before:
            x = layer(x, training=False)
        found = outputs(x, training=False)
        return found if isinstance(found, (list, tuple)) else [found]

    return shown, run


def views(entry, inputs: np.ndarray) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Each layer's figures (JSON) and image grids (``w<i>``/``a<i>`` uint8 arrays)."""
    if entry.views is None:
        entry.views = _probe(entry.model)
    shown, run = entry.views
    activations = run(inputs.astype(np.float32))
    described, images = [], {}
    for i, (layer, activation) in enumerate(zip(shown, activations, strict=True)):
        values = np.asarray(activation)[0]
        row = {"name": layer.name, "type": type(layer).__name__, "shape": list(values.shape),
               "activations": statistics(values), "weights": None}  # fmt: skip
        images[f"a{i}"] = grid(_as_maps(values))
        kernels = [w for w in layer.weights if len(w.shape) >= 2]
        if kernels:
            kernel = np.asarray(kernels[0].numpy())
            row["weights"] = {"shape": list(kernel.shape), **statistics(kernel)}
            row["parameters"] = int(sum(int(np.prod(w.shape)) for w in layer.weights))
            images[f"w{i}"] = grid(_as_maps(kernel))
        described.append(row)
    return described, images
