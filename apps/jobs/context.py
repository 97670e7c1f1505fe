"""What a job kind's ``run`` gets in the job process: parameters and a way to report.

Reports are structured events written as JSON lines on a pipe to the worker,
which stores and publishes them (``apps.jobs.runner``). Nothing here touches
the database.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from typing import IO, Any

from apps.core.storage import ArtifactStore, get_store


class JobAborted(Exception):
    """Raised by ``JobContext.check_abort`` once the worker asked the job to stop."""


class JobContext:
    def __init__(
        self, *, job_id: int, kind: str, params: dict[str, Any], attempt: int,
        staging_prefix: str, channel: IO[str],
    ):  # fmt: skip
        self.job_id = job_id
        self.kind = kind
        self.params = params
        self.attempt = attempt
        self.staging_prefix = staging_prefix
        self._channel = channel
        self._started = time.monotonic()
        self._steps: dict[str, int] = {}
        self.stopping = False
        self._lock = threading.Lock()

    # --- artifacts -------------------------------------------------------------
    @property
    def store(self) -> ArtifactStore:
        return get_store()

    def artifact_key(self, name: str) -> str:
        """The staging key of an artifact ``name``; published with the job on success."""
        return self.staging_prefix + name.lstrip("/")

    # --- reporting -------------------------------------------------------------
    def _emit(self, type_: str, **data: Any) -> None:
        line = json.dumps({"type": type_, "data": data, "time": time.time()}) + "\n"
        with self._lock:  # a sampling thread (apps.jobs.sysmetrics) reports too
            self._channel.write(line)
            self._channel.flush()

    def log(self, message: str, level: str = "info") -> None:
        self._emit("log", level=level, message=str(message), stream="job")

    def status(self, text: str) -> None:
        """A short line saying what the job is doing now (shown beside the progress bar)."""
        self._emit("status", status="running", text=text)

    def progress(self, fraction: float, eta_seconds: float | None = None, text: str = "") -> None:
        """Report progress in [0, 1]; the ETA is extrapolated from the elapsed time if omitted."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        if eta_seconds is None and fraction > 0:
            elapsed = time.monotonic() - self._started
            eta_seconds = elapsed * (1 - fraction) / fraction
        # Job.eta_seconds is unsigned: a kind that overshoots its total must not fail the job.
        eta = None if eta_seconds is None else max(0, round(eta_seconds))
        self._emit("progress", progress=fraction, eta_seconds=eta, text=text)

    def metric(self, series: str, value: float, step: int | None = None) -> None:
        """Append a point to a metric series; ``step`` defaults to one past the last."""
        if step is None:
            step = self._steps.get(series, -1) + 1
        self._steps[series] = step
        self._emit("metric", series=series, step=int(step), value=float(value))

    def epoch(self, number: int, row: dict[str, Any], step: int) -> None:
        """A finished epoch's figures (``row``: column -> value), shown as it ends."""
        shown = {
            k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in row.items()
        }
        self._emit("epoch", epoch=int(number), step=int(step), row=shown)

    # --- stopping --------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def on_term(signum, frame):
            self.stopping = True

        signal.signal(signal.SIGTERM, on_term)

    def check_abort(self) -> None:
        """Raise ``JobAborted`` if the worker asked the job to stop (call between steps)."""
        if self.stopping:
            raise JobAborted()
