"""Entry point of a model process: ``python -m apps.inference.child <requests-fd> <replies-fd>``.

The inference server (``apps.inference.host``) starts it once, with the job sandbox's
environment, settings and confinement (docs/decisions/0007-job-sandbox.md): it holds no
credential, opens no database and reads only the folders its server fills. Like a job
process it is forked from a fork server that imported TensorFlow already
(``apps.jobs.forkserver``, which calls ``main`` with its pipes as descriptors 3 and 4),
or exec'd with ``DIGITS_JOB_LAUNCHER=exec``; either way it confines itself first. It keeps
recently used Keras models in memory and answers the server's requests, one at a time,
over two pipes (``apps.inference.protocol``):

- ``load`` ``{key, folder, spec}``: load the snapshot unpacked in ``folder``;
- ``predict`` ``{key, layers}`` + ``inputs`` (N, H, W, C): the network's raw outputs,
  and for ``layers`` the per-layer views of the first input (``apps.inference.layers``);
- ``evict`` ``{keys}``; ``stats``.

Every reply carries ``ok``, the keys it holds (``cached``) and its resident memory.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from collections import OrderedDict
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from apps.inference import protocol


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Cached:
    """A loaded model, its compiled forward pass and what loading it cost in memory."""

    def __init__(self, model, cost: int):
        import tensorflow as tf

        self.model, self.cost = model, cost
        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        self.forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        self.views = None  # built on the first request for layer views

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        return self.forward(inputs.astype(np.float32, copy=False)).numpy()


def load_model(folder: Path, spec: dict):
    """A snapshot's model: the saved file in Keras' safe mode, or — for custom network
    code, whose layers the file cannot name — the network rebuilt by the user's code
    (as its training job built it) with the saved weights."""
    import keras

    if spec["network"].get("source") != "custom":
        return keras.models.load_model(folder / "model.keras", compile=False, safe_mode=True)
    from apps.mlmodels.trainer import Trainer

    trainer = Trainer(None, params={"model_id": spec["model_id"], "solver": spec["solver"],
                                    "network": spec["network"]})  # fmt: skip
    from apps.mlmodels import snapshots, tasks

    trainer.input_shape, trainer.num_classes = tuple(spec["input_shape"]), spec["num_classes"]
    trainer.task = tasks.task_of(spec.get("manifest"))
    mean = folder / "mean.npy"
    trainer.mean_image = lambda info: np.load(mean).astype(np.float32) if mean.exists() else None
    model = trainer.build_model(info=SimpleNamespace(manifest=spec.get("manifest") or {}))
    model.load_weights(snapshots.weights_file(folder))
    return model


class ModelCache:
    """Models by key, least recently used first, within ``limit`` bytes of memory."""

    def __init__(self, limit: int):
        self.limit, self.models = limit, OrderedDict()
        self.baseline = rss_bytes()

    def load(self, key: str, folder: Path, spec: dict) -> None:
        before = rss_bytes()
        model = load_model(folder, spec)
        entry = Cached(model, cost=0)
        entry(np.zeros((1, *model.input_shape[1:]), np.float32))  # trace the forward pass once
        weights = sum(int(np.prod(w.shape)) * 4 for w in model.weights)
        entry.cost = max(rss_bytes() - before, weights)
        self.models[key] = entry
        self.shrink(keep=key)

    def shrink(self, keep: str | None = None) -> None:
        while len(self.models) > 1 and self.baseline + self.used() > self.limit:
            oldest = next(k for k in self.models if k != keep)
            self.evict([oldest])

    def used(self) -> int:
        return sum(entry.cost for entry in self.models.values())

    def get(self, key: str) -> Cached:
        entry = self.models.get(key)
        if entry is None:
            raise KeyError(key)
        self.models.move_to_end(key)
        return entry

    def evict(self, keys) -> None:
        for key in keys:
            self.models.pop(key, None)
        gc.collect()


def handle(cache: ModelCache, header: dict, arrays: dict) -> tuple[dict, dict]:
    op = header.get("op")
    if op == "load":
        started = time.perf_counter()
        cache.load(header["key"], Path(header["folder"]), header["spec"])
        return {"load_ms": (time.perf_counter() - started) * 1000}, {}
    if op == "predict":
        entry = cache.get(header["key"])
        started = time.perf_counter()
        outputs = entry(arrays["inputs"])
        reply = {"predict_ms": (time.perf_counter() - started) * 1000}
        if not header.get("layers"):
            return reply, {"outputs": outputs}
        from apps.inference import layers

        described, images = layers.views(entry, arrays["inputs"][:1])
        return {**reply, "layers": described}, {"outputs": outputs, **images}
    if op == "evict":
        cache.evict(header.get("keys", []))
        return {}, {}
    if op == "stats":
        return {"baseline": cache.baseline, "used": cache.used()}, {}
    raise ValueError(f"unknown request {op!r}")


def serve(requests: Connection, replies: Connection, cache: ModelCache) -> None:
    while True:
        try:
            header, arrays = protocol.recv(requests)
        except EOFError:
            return
        try:
            reply, out = handle(cache, header, arrays)
            reply["ok"] = True
        except Exception as exc:  # the user's network or file at fault: say so, go on
            traceback.print_exc()
            reply, out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}, {}
        reply.update(cached=list(cache.models), rss=rss_bytes())
        protocol.send(replies, reply, out)


def main(argv: list[str]) -> int:
    requests, replies = (
        Connection(int(argv[1]), writable=False),
        Connection(int(argv[2]), readable=False),
    )
    spec = json.load(sys.stdin)
    from apps.jobs.confine import Confinement, ConfinementError, enter

    try:
        enter(Confinement(**spec["sandbox"]))
    except (ConfinementError, OSError) as exc:
        protocol.send(replies, {"ok": False, "error": f"could not be sandboxed: {exc}"})
        return 1
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.job_settings")
    import django

    django.setup()
    import tensorflow  # noqa: F401  loaded before the baseline is measured

    cache = ModelCache(limit=spec["memory_limit"])
    protocol.send(replies, {"ok": True, "ready": True, "cached": [], "rss": rss_bytes()})
    serve(requests, replies, cache)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
