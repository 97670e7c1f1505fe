"""The work of a ``model.evaluate`` job: classify many inputs in batches, write the
per-entry predictions, return the figures (imports TensorFlow: job processes only).

The model is rebuilt as training built it (``Trainer.build_inference_model``: its
preprocessing is layers of the model) and its snapshot's weights loaded, once. A dataset
stage streams through tf.data into ``model.predict``; archive and list images are decoded
by a thread pool one batch ahead of ``predict_on_batch``. No process is started per item.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keras
import numpy as np

from apps.core import images
from apps.evaluations import metrics, predictions, sources
from apps.mlmodels import snapshots

#: Lines about skipped inputs kept in the job's result (all are counted).
MAX_SKIPPED_SHOWN = 50


class _Progress(keras.callbacks.Callback):
    def __init__(self, ctx, steps: int):
        super().__init__()
        self.ctx, self.steps = ctx, max(steps, 1)

    def on_predict_batch_end(self, batch, logs=None):
        self.ctx.check_abort()
        if batch % 10 == 0:
            self.ctx.progress((batch + 1) / self.steps)


class Evaluator:
    def __init__(self, ctx):
        self.ctx, self.params = ctx, ctx.params
        self.workdir = Path(tempfile.mkdtemp(prefix="evaluate-"))  # below the job's TMPDIR
        self.skipped: list[str] = []

    def run(self) -> dict[str, Any]:
        self.ctx.status("Loading the model")
        model, names = self._model()
        self.ctx.status("Classifying")
        started = time.monotonic()
        if self.params["source"] == "stage":
            table = self._stage(model)
        else:
            table = self._files(model, len(names))
        seconds = time.monotonic() - started
        self.ctx.log(f"Classified {len(table)} inputs in {seconds:.1f} s")
        summary = metrics.summarize(table["label"], table["probs"], self.params["top_n"], names)
        with self.ctx.store.staged(self.ctx.artifact_key(predictions.NAME)) as out:
            predictions.write(table, out)
        return {
            "summary": summary,
            "seconds": round(seconds, 3),
            "skipped_count": len(self.skipped),
            "skipped": self.skipped[:MAX_SKIPPED_SHOWN],
        }

    def _model(self):
        from apps.mlmodels.trainer import Trainer

        train_params = self.params["train_params"]
        snapshots.extract(self.params["model_id"], self.params["epoch"], self.workdir / "snap")
        self.trainer = Trainer(self.ctx, params=train_params)
        model = self.trainer.build_inference_model()
        model.load_weights(snapshots.weights_file(self.workdir / "snap"))
        classes = int(model.output_shape[-1])
        names = list(train_params["dataset"]["manifest"].get("label_names") or [])
        return model, (names + [str(i) for i in range(len(names), classes)])[:classes]

    # --- a dataset stage ------------------------------------------------------------------
    def _stage(self, model) -> np.ndarray:
        from apps.mlmodels import data

        ds, stage = self.params["dataset"], self.params["stage"]
        info = data.dataset_info(ds["id"], ds["prefix"], ds["manifest"])
        batch_size = self.params["batch_size"]
        pipeline = data.stage_pipeline(
            info, stage, batch_size=batch_size, training=False, shuffle=False, seed=None,
            cache=False,
        ).map(lambda image, label: image)  # fmt: skip
        labels = data.labels_of(info, stage)
        steps = -(-len(labels) // batch_size)
        probs = model.predict(pipeline, verbose=0, callbacks=[_Progress(self.ctx, steps)])
        return predictions.table(np.arange(len(labels)), [], labels, probs)

    # --- uploaded images ------------------------------------------------------------------
    def _items(self, classes: int) -> list[sources.Item]:
        store, root = self.ctx.store, None
        if self.params.get("archive_key"):
            key = self.params["archive_key"]
            archive = self.workdir / "archive"
            with store.open(key) as src, open(archive, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            root = sources.extract(archive, key.rsplit("/", 1)[-1], self.workdir / "files")
            archive.unlink()
        if not self.params.get("list_key"):
            return sources.archive_items(root, self._names(classes))
        text = sources.decode_text(store.get(self.params["list_key"]), "the list")
        items, skipped = sources.list_items(text, classes, root)
        self.skipped.extend(skipped)
        return items

    def _names(self, classes: int) -> list[str]:
        names = self.params["train_params"]["dataset"]["manifest"].get("label_names") or []
        return list(names)[:classes]

    def _load(self, item: sources.Item) -> np.ndarray | None:
        try:
            data = item.read()
            return images.network_input(data, self.trainer.input_shape)
        except Exception as exc:  # noqa: BLE001 - any unreadable input is skipped and named
            message = " ".join(getattr(exc, "messages", ())) or str(exc)  # ValidationError
            self.skipped.append(f"{item.name}: {message}")
            return None

    def _files(self, model, classes: int) -> np.ndarray:
        items = self._items(classes)
        if not items:
            raise sources.SourceError("No image to classify: " + "; ".join(self.skipped[:5]))
        size = self.params["batch_size"]
        starts = range(0, len(items), size)
        kept: list[tuple[int, sources.Item]] = []
        outputs: list[np.ndarray] = []
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            pending = pool.map(self._load, items[:size])
            for number, start in enumerate(starts):
                loaded = list(pending)
                # Decode the next batch while this one is predicted.
                pending = pool.map(self._load, items[start + size : start + 2 * size])
                good = [(start + i, a) for i, a in enumerate(loaded) if a is not None]
                if good:
                    kept += [(position, items[position]) for position, _ in good]
                    arrays = np.stack([a for _, a in good]).astype(np.float32)
                    outputs.append(np.asarray(model.predict_on_batch(arrays)))
                self.ctx.check_abort()
                self.ctx.progress((number + 1) / len(starts))
        if not kept:
            raise sources.SourceError("No image could be read: " + "; ".join(self.skipped[:5]))
        return predictions.table(
            [p for p, _ in kept], [item.name for _, item in kept],
            [item.label for _, item in kept], np.concatenate(outputs),
        )  # fmt: skip


def evaluate(ctx) -> dict[str, Any]:
    return Evaluator(ctx).run()
