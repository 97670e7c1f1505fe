"""A job's metric series, downsampled for charts.

Charts read a job's metrics once, as series (``metric_series``), then follow its live
events. A long run logs far more points than a chart has pixels: each series longer than
``points`` is cut down with Largest-Triangle-Three-Buckets (``lttb``), which keeps the
first and last point and, per bucket, the point that spans the largest triangle with its
neighbours — peaks, dips and steps survive, flat stretches thin out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db.models import F

from apps.jobs.models import Job

DEFAULT_POINTS = 2000
MAX_POINTS = 20000


def lttb(x: np.ndarray, y: np.ndarray, points: int) -> np.ndarray:
    """The indices of the ``points`` points (x ascending) that LTTB keeps."""
    n = len(x)
    if points >= n or points < 3:
        return np.arange(n)
    edges = np.linspace(1, n - 1, points - 1).astype(np.int64)  # buckets of the middle points
    keep = np.empty(points, dtype=np.int64)
    keep[0], keep[-1] = 0, n - 1
    previous = 0
    for b in range(points - 2):
        start, stop = edges[b], edges[b + 1]
        following = slice(stop, edges[b + 2] if b + 2 < len(edges) else n)
        cx, cy = x[following].mean(), y[following].mean()
        ax, ay = x[previous], y[previous]
        bx, by = x[start:stop], y[start:stop]
        area = np.abs((ax - cx) * (by - ay) - (ax - bx) * (cy - ay))
        previous = start + int(np.argmax(area))
        keep[b + 1] = previous
    return keep


def _columns(job: Job, last_seq: int) -> dict[str, list[tuple]]:
    rows = (
        job.events.filter(type="metric", seq__lte=last_seq)
        .order_by("seq")
        .values_list("data__series", "data__step", "data__value", "created_at")
    )
    columns: dict[str, list[tuple]] = {}
    for series, step, value, created in rows.iterator(chunk_size=20000):
        columns.setdefault(series, []).append((step, value, created.timestamp()))
    return columns


def metric_series(job: Job, points: int = DEFAULT_POINTS) -> dict[str, Any]:
    """Every metric series of ``job`` as ``[[step, value, unix time], ...]``, each cut down
    to at most ``points`` points; ``last_seq``: the events it covers (follow on from it)."""
    last_seq = Job.objects.filter(pk=job.pk).values_list(F("last_seq"), flat=True).first() or 0
    out: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for series, rows in _columns(job, last_seq).items():
        data = np.asarray(rows, dtype=np.float64)
        finite = np.isfinite(data[:, 1])
        data = data[finite]
        counts[series] = len(data)
        keep = lttb(data[:, 0], data[:, 1], points)
        out[series] = data[keep].round(6).tolist()
    return {"job": job.pk, "last_seq": last_seq, "points": points, "counts": counts,
            "series": out}  # fmt: skip
