"""Warm inference, as the web process (or any trusted caller) uses it.

``predict(model, arrays)`` sends a batch to the inference server (``apps.inference.server``,
``DIGITS_INFERENCE_URL``), whose sandboxed model processes keep recently used models
loaded: no job, no process start, no TensorFlow in the caller. The caller has checked
that the user may see ``model``; nothing here checks permissions.
docs/decisions/0011-warm-inference.md says why it is shaped so.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Client
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image

from apps.inference import protocol

#: Seconds a request waits for its answer by default (a cold model loads in this time).
DEFAULT_TIMEOUT = 60.0


class InferenceError(Exception):
    """The request cannot be answered; the message says why, for the user.

    ``status`` is the HTTP status it stands for (400 bad input, 409 the model has no such
    snapshot, 422 the model failed to load or run, 503 no inference server answered);
    ``field`` names the input at fault, where there is one.
    """

    def __init__(self, message: str, status: int = 422, field: str | None = None):
        super().__init__(message)
        self.status, self.field = status, field


class InferenceUnavailable(InferenceError):
    def __init__(self, message: str):
        super().__init__(message, status=503)


@dataclass
class Prediction:
    """What one request answered: ``outputs`` (N, ...) raw network outputs."""

    outputs: np.ndarray
    epoch: int
    cache_hit: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: Per-layer figures of the first input (``apps.inference.layers``), when asked for.
    layers: list[dict[str, Any]] | None = None
    images: dict[str, np.ndarray] = field(default_factory=dict)


def predict(model, arrays: np.ndarray, epoch: int | None = None, timeout: float = DEFAULT_TIMEOUT):
    """The network's raw outputs (N, ...) for ``arrays`` (N, H, W, C), uint8 or float pixel
    values 0..255 (the model's layers preprocess), by the snapshot of ``epoch`` (default:
    the best epoch, else the latest). ``InferenceError`` when it cannot be answered."""
    return infer(model, arrays, epoch=epoch, timeout=timeout).outputs


def infer(model, arrays, epoch=None, timeout=DEFAULT_TIMEOUT, layers=False) -> Prediction:
    """``predict`` with what else the server knows: the epoch used, whether the model was
    loaded already, timings, and for ``layers`` DIGITS' per-layer views of the first input."""
    request = model_request(model, epoch, timeout)
    arrays = _checked(np.asarray(arrays), request["spec"]["input_shape"])
    reply, out = call({"op": "predict", "request": request, "layers": layers},
                      {"inputs": arrays}, timeout)  # fmt: skip
    timings = {k: reply[k] for k in ("load_ms", "predict_ms") if reply.get(k) is not None}
    return Prediction(
        outputs=out.pop("outputs"), epoch=request["epoch"], cache_hit=reply["cache_hit"],
        timings_ms=timings, layers=reply.get("layers"), images=out,
    )  # fmt: skip


def _checked(arrays: np.ndarray, input_shape) -> np.ndarray:
    if arrays.ndim != 4 or tuple(arrays.shape[1:]) != tuple(input_shape) or len(arrays) == 0:
        raise InferenceError(
            f"Expected a batch of shape (N, {', '.join(map(str, input_shape))}), "
            f"got {tuple(arrays.shape)}.", status=400, field="image",
        )  # fmt: skip
    if arrays.dtype != np.uint8:
        arrays = arrays.astype(np.float32)
    return arrays


def prepare_image(data: bytes, input_shape) -> np.ndarray:
    """An uploaded image (bytes) as the network's input (H, W, C uint8): decoded with
    Pillow's decompression-bomb limits, converted and squashed to the input's size.
    ``InferenceError`` (400, field ``image``) when it is not an image."""
    from apps.core import images

    try:
        return images.network_input(data, input_shape)
    except (ValueError, OSError, Image.DecompressionBombError) as exc:
        raise InferenceError(str(exc), status=400, field="image") from None


def resolve_epoch(model, epoch: int | None) -> int:
    """The snapshot to use: ``epoch``, else the best epoch, else the latest one saved."""
    if epoch is None and model.best_epoch:
        return model.best_epoch  # no store listing on the common path
    from apps.mlmodels import snapshots

    saved = snapshots.epochs(model.pk)
    if not saved:
        raise InferenceError("The model has no snapshot yet.", status=409, field="epoch")
    epoch = epoch or saved[-1]
    if epoch not in saved:
        raise InferenceError(
            f"There is no snapshot of epoch {epoch}; saved: {', '.join(map(str, saved))}.",
            status=400, field="epoch",
        )  # fmt: skip
    return epoch


def cache_key(model, epoch: int) -> str:
    """A snapshot as the model processes cache it. A new training run (resume) gives the
    model a new job and so new keys: a replaced snapshot is never served from memory."""
    return f"{model.pk}:{model.job_id or 0}:{epoch}"


def model_request(model, epoch: int | None, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Everything the server needs to load and run ``model`` (it reads no database row)."""
    epoch = resolve_epoch(model, epoch)
    manifest = model.dataset.manifest
    network = model.network
    custom = network.get("source") == "custom"
    return {
        "key": cache_key(model, epoch), "model_id": model.pk, "epoch": epoch, "timeout": timeout,
        "group": f"code-{model.owner_id}" if custom else "shared",
        "spec": {"model_id": model.pk, "network": network, "solver": model.solver,
                 "input_shape": list(manifest["feature"]["shape"]),
                 "num_classes": len(manifest.get("label_names") or []),
                 "manifest": {k: manifest.get(k) for k in ("task", "label", "feature")}},
        "dataset": {"id": model.dataset_id, "prefix": model.dataset.data_prefix,
                    "mean": manifest.get("mean")},
    }  # fmt: skip


def evict(model_id: int) -> None:
    """Ask the server to forget ``model_id`` now (deleted, or training again). Best effort:
    other servers' sweeps forget it within ``DIGITS_INFERENCE_SWEEP_SECONDS``."""
    with contextlib.suppress(InferenceError):
        call({"op": "evict", "model_id": model_id}, timeout=10)


def status() -> dict[str, Any]:
    """The server's model processes: group, pid, resident memory, cached snapshots."""
    return call({"op": "status"}, timeout=10)[0]


# --- the connection to the server ------------------------------------------------------
def address() -> tuple[str | tuple[str, int], str]:
    """``(address, family)`` of ``DIGITS_INFERENCE_URL`` (``unix:///path``, ``tcp://h:p``);
    unset: a Unix socket in the data folder (the embedded server of ``manage.py serve``)."""
    url = settings.DIGITS_INFERENCE_URL or f"unix://{settings.DATA_DIR / 'inference.sock'}"
    if url.startswith("unix://"):
        return url.removeprefix("unix://"), "AF_UNIX"
    if url.startswith("tcp://"):
        host, _, port = url.removeprefix("tcp://").rstrip("/").rpartition(":")
        return (host, int(port)), "AF_INET"
    raise InferenceUnavailable(f"DIGITS_INFERENCE_URL must start with unix:// or tcp://: {url}")


def auth_key() -> bytes:
    """The key both ends prove they hold (``multiprocessing.connection``'s HMAC challenge)."""
    return hmac.new(settings.SECRET_KEY.encode(), b"digits-inference", hashlib.sha256).digest()


_local = threading.local()


def _connection():
    where = address()
    conn = getattr(_local, "conn", None)
    if conn is None or _local.where != where:
        try:
            conn = Client(where[0], family=where[1], authkey=auth_key())
        except (OSError, EOFError) as exc:
            raise InferenceUnavailable(
                f"The inference service is not reachable ({type(exc).__name__}); "
                "try again later or ask an administrator."
            ) from None
        _local.conn, _local.where = conn, where
    return conn


def _drop() -> None:
    conn, _local.conn = getattr(_local, "conn", None), None
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()


def call(header: dict, arrays: dict | None = None, timeout: float = DEFAULT_TIMEOUT):
    """One request to the server and its reply; reconnects once when the connection broke."""
    for attempt in range(2):
        conn = _connection()
        try:
            protocol.send(conn, header, arrays)
            if not conn.poll(timeout):
                _drop()  # its late answer must not be read as the next request's
                raise InferenceUnavailable(
                    f"The inference service did not answer in {timeout:g} s."
                )
            reply, out = protocol.recv(conn)
            break
        except (EOFError, OSError, protocol.ProtocolError):
            _drop()
            if attempt:
                raise InferenceUnavailable("The inference service closed the connection.") from None
    if not reply.get("ok"):
        raise InferenceError(reply.get("error", "Inference failed."), status=reply.get("status", 422),
                             field=reply.get("field"))  # fmt: skip
    return reply, out
