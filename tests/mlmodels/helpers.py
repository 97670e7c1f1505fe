"""Helpers of the training tests: scikit-learn's digits as a real dataset, models via the API.

The digits (1797 images of 8×8, values 0..16) are scaled to 0..255, written as PNG
files into one folder per class under a server data root, and built into a dataset
by the image classification plugin (through ``POST /api/v1/datasets/``) with its
bilinear resize. Models are created with ``POST /api/v1/models/`` and trained by a
real worker: the job path of production, on the CPU.
"""

from __future__ import annotations

import io
import re
from functools import cache
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from apps.datasets.models import Dataset
from apps.jobs.models import Job
from apps.mlmodels.models import TrainedModel
from tests.conftest import wait_until

DATASETS_URL = "/api/v1/datasets/"
MODELS_URL = "/api/v1/models/"
TYPE = "image-classification"
#: Training on 2 busy CPU cores is slow; these are ceilings, not expectations.
BUILD_TIMEOUT = 240
TRAIN_TIMEOUT = 420
EPOCH_LINE = re.compile(r"^Epoch (\d+): ")


@cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (n, 8, 8) in 0..255, labels (n,))`` of scikit-learn's digits."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return np.round(data.images * 255.0 / 16.0).astype(np.uint8), data.target.astype(int)


def png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def write_digits(root: Path, per_class: int | None = None) -> Path:
    """``root/<digit>/img_NNNN.png`` for the first ``per_class`` images of each digit."""
    images, labels = digits()
    for digit in range(10):
        folder = root / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == digit)[:per_class]:
            (folder / f"img_{i:04d}.png").write_bytes(png(images[i]))
    return root


def build_dataset(
    api, root: Path, *, size: int, per_class: int | None = None, name: str = "digits"
) -> Dataset:
    """Write the digits under ``root`` and build a grayscale dataset of them through the API."""
    folder = write_digits(root / f"{name}-{size}-{per_class}", per_class)
    options = {
        "source": "folder", "folder": str(folder), "image_type": "grayscale",
        "width": size, "height": size, "resize_mode": "squash", "val_percent": 25, "seed": 1,
    }  # fmt: skip
    reply = api.post(DATASETS_URL, {"type": TYPE, "name": name, "options": options}, format="json")
    assert reply.status_code == 201, reply.content
    pk = reply.json()["id"]
    dataset = wait_until(
        lambda: Dataset.objects.exclude(status="building").filter(pk=pk).first(),
        timeout=BUILD_TIMEOUT,
        interval=0.5,
        message=f"dataset {pk} was not built in {BUILD_TIMEOUT} s",
    )
    assert dataset.status == "ready", dataset.job.error
    return dataset


def solver(**options) -> dict:
    """Small, fast, seeded training options; ``options`` override them."""
    return {
        "epochs": 3, "batch_size": 32, "base_lr": 0.001, "optimizer": "adam", "policy": "fixed",
        "seed": 1, "metrics_every": 5, **options,
    }  # fmt: skip


def create_models(api, dataset, name="lenet", network=None, **solver_options) -> list[dict]:
    """``POST /api/v1/models/``; returns the created models (several for a sweep)."""
    body = {
        "dataset": dataset.pk,
        "name": name,
        "network": network or {"source": "standard", "name": "lenet"},
        "solver": solver(**solver_options),
    }
    reply = api.post(MODELS_URL, body, format="json")
    assert reply.status_code == 201, reply.content
    return reply.json()["models"]


def create_model(api, dataset, name="lenet", network=None, **solver_options) -> dict:
    [model] = create_models(api, dataset, name, network, **solver_options)
    return model


def finished(model_id: int, timeout: float = TRAIN_TIMEOUT) -> TrainedModel:
    """The model once its training job has ended (ready or error); the job is final too."""

    def ended():
        model = TrainedModel.objects.select_related("job").filter(pk=model_id).first()
        if model and model.status != "training" and not model.job.is_active:
            return model
        return None

    try:
        return wait_until(ended, timeout=timeout, interval=0.5)
    except AssertionError:
        job = TrainedModel.objects.get(pk=model_id).job
        raise AssertionError(
            f"model {model_id} still training after {timeout} s; job {job.status} "
            f"({job.status_text}); last log lines:\n" + "\n".join(log_lines(job)[-15:])
        ) from None


def job_process(worker) -> psutil.Process:
    """The one job process the worker process has started (and that still runs)."""

    procs = wait_until(worker.job_processes, timeout=30, message="no job process under the worker")
    assert len(procs) == 1, procs
    return procs[0]


def gone(proc: psutil.Process) -> bool:
    """The process has exited (a zombie not yet waited for counts as exited)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def log_lines(job: Job) -> list[str]:
    return [
        d.get("message", "")
        for d in job.events.filter(type="log").order_by("seq").values_list("data", flat=True)
    ]


def epoch_lines(lines: list[str]) -> list[int]:
    """The epoch numbers of the job's "Epoch N: loss …" lines, in order."""
    return [int(m.group(1)) for m in map(EPOCH_LINE.match, lines) if m]


def series(job: Job, name: str) -> list[tuple[int, float]]:
    """``(step, value)`` points of one metric series of the job, in order."""
    rows = job.events.filter(type="metric", data__series=name).order_by("seq")
    return [(d["step"], d["value"]) for d in rows.values_list("data", flat=True)]
