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
from django.core.cache import cache
from django.db import connection

from apps.jobs.models import Job

DEFAULT_POINTS = 2000
MAX_POINTS = 20000
CACHE_SECONDS = 3600


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


_SQL = """SELECT data->>'series', (data->>'step')::float8, (data->>'value')::float8,
    extract(epoch from created_at)::float8 FROM jobs_jobevent
    WHERE job_id = %s AND type = 'metric' AND seq > %s AND seq <= %s ORDER BY seq"""


def _columns(job_id: int, after: int, last_seq: int) -> dict[str, list[tuple]]:
    """The metric points of events ``after`` < seq <= ``last_seq``, by series."""
    columns: dict[str, list[tuple]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_SQL, [job_id, after, last_seq])
        while rows := cursor.fetchmany(50_000):
            for series, step, value, created in rows:
                columns.setdefault(series, []).append((step, value, created))
    return columns


def _cut(points: np.ndarray, limit: int) -> np.ndarray:
    points = points[np.isfinite(points[:, 1])]
    return points[lttb(points[:, 0], points[:, 1], limit)] if len(points) else points


def metric_series(job: Job, points: int = DEFAULT_POINTS) -> dict[str, Any]:
    """Every metric series of ``job`` as ``[[step, value, unix time], ...]``, each cut down
    to at most ``points`` points; ``last_seq``: the events it covers (follow on from it).

    The cut series are kept in the process's cache with the seq they cover: a later call
    reads only the newer events and cuts the cached points plus those again (a finished
    run is read once; a watched one a little at a time).
    """
    last_seq = Job.objects.filter(pk=job.pk).values_list("last_seq", flat=True).first() or 0
    key = f"digits:series:{job.pk}:{points}"
    cached = cache.get(key)
    if cached is None or cached["last_seq"] > last_seq:
        cached = {"last_seq": 0, "series": {}, "counts": {}}
    series, counts = dict(cached["series"]), dict(cached["counts"])
    for name, rows in _columns(job.pk, cached["last_seq"], last_seq).items():
        new = np.asarray(rows, dtype=np.float64)
        counts[name] = counts.get(name, 0) + int(np.isfinite(new[:, 1]).sum())
        old = series.get(name)
        series[name] = _cut(new if old is None else np.concatenate([old, new]), points)
    cache.set(key, {"last_seq": last_seq, "series": series, "counts": counts}, CACHE_SECONDS)
    return {
        "job": job.pk, "last_seq": last_seq, "points": points, "counts": counts,
        "series": {name: data.round(6).tolist() for name, data in series.items()},
    }  # fmt: skip
