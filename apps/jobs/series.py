"""A job's metric series, downsampled for charts.

Charts read a job's metrics once, as series (``metric_series``), then follow its live
events. A long run logs far more points than a chart has pixels: each series longer than
``points`` is cut down with Largest-Triangle-Three-Buckets (``lttb``), which keeps the
first and last point and, per bucket, the point that spans the largest triangle with its
neighbours — peaks, dips and steps survive, flat stretches thin out.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction

from apps.jobs.models import Job, JobSeries

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
_BATCH = 50_000


def _columns(job_id: int, after: int, last_seq: int) -> dict[str, np.ndarray]:
    """The metric points of events ``after`` < seq <= ``last_seq``, by series: float64
    arrays of rows ``(step, value, unix time)``. Each batch of rows becomes arrays at once,
    so a million points cost 24 MB per series, not a million Python tuples."""
    parts: dict[str, list[np.ndarray]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_SQL, [job_id, after, last_seq])
        while rows := cursor.fetchmany(_BATCH):
            batch: dict[str, list[tuple]] = {}
            for series, step, value, created in rows:
                batch.setdefault(series, []).append((step, value, created))
            for series, points in batch.items():
                parts.setdefault(series, []).append(np.asarray(points, dtype=np.float64))
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def _cut(points: np.ndarray, limit: int) -> np.ndarray:
    points = points[np.isfinite(points[:, 1])]
    return points[lttb(points[:, 0], points[:, 1], limit)] if len(points) else points


def _extend(job_id: int, state: dict[str, Any], last_seq: int, points: int) -> dict[str, Any]:
    """``state`` (cut series covering ``state["last_seq"]``) plus the events up to
    ``last_seq``, each series cut again to ``points``."""
    series, counts = dict(state["series"]), dict(state["counts"])
    for name, new in _columns(job_id, state["last_seq"], last_seq).items():
        counts[name] = counts.get(name, 0) + int(np.isfinite(new[:, 1]).sum())
        old = series.get(name)
        series[name] = _cut(new if old is None else np.concatenate([old, new]), points)
    return {"last_seq": last_seq, "series": series, "counts": counts}


# --- the stored cut (JobSeries): shared by every web process --------------------------
_UPSERT = """INSERT INTO jobs_jobseries (job_id, points, last_seq, lengths, counts, data,
    updated_at) VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s, now())
    ON CONFLICT (job_id, points) DO UPDATE SET last_seq = EXCLUDED.last_seq,
    lengths = EXCLUDED.lengths, counts = EXCLUDED.counts, data = EXCLUDED.data,
    updated_at = EXCLUDED.updated_at
    WHERE jobs_jobseries.last_seq {op} EXCLUDED.last_seq"""


def _save(job_id: int, points: int, state: dict[str, Any], replace: bool = False) -> bool:
    """Keep ``state`` as the job's stored cut unless one covering more events is there
    (``replace``: also one covering as many). False when nothing was written (a newer cut
    stored, or the job deleted meanwhile)."""
    lengths = [[name, len(data)] for name, data in state["series"].items()]  # jsonb sorts keys
    arrays = [data.astype("<f8") for data in state["series"].values()]
    data = np.concatenate(arrays).tobytes() if arrays else b""
    sql = _UPSERT.format(op="<=" if replace else "<")
    params = [job_id, points, state["last_seq"], json.dumps(lengths),
              json.dumps(state["counts"]), data]  # fmt: skip
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount > 0
    except IntegrityError:  # the job was deleted while its series were read
        return False


def _load(job_id: int, points: int) -> dict[str, Any] | None:
    row = JobSeries.objects.filter(job_id=job_id, points=points).first()
    if row is None:
        return None
    flat = np.frombuffer(bytes(row.data), dtype="<f8").reshape(-1, 3)
    series, at = {}, 0
    for name, length in row.lengths:
        series[name] = flat[at : at + length]
        at += length
    return {"last_seq": row.last_seq, "series": series, "counts": row.counts}


def store(job_id: int, points: int = DEFAULT_POINTS) -> None:
    """Read every metric event of the job, cut each series and keep the cut for every web
    process (the runner calls this when a job ends): the first chart of the run anywhere
    reads it and only the events after it. Replaces a cut covering as many events (one
    that a web process built a little at a time while the job ran)."""
    last_seq = Job.objects.filter(pk=job_id).values_list("last_seq", flat=True).first()
    if last_seq:
        fresh = {"last_seq": 0, "series": {}, "counts": {}}
        _save(job_id, points, _extend(job_id, fresh, last_seq, points), replace=True)


def metric_series(job: Job, points: int = DEFAULT_POINTS) -> dict[str, Any]:
    """Every metric series of ``job`` as ``[[step, value, unix time], ...]``, each cut down
    to at most ``points`` points; ``last_seq``: the events it covers (follow on from it).

    The cut series are kept with the seq they cover, in the process's cache and (for the
    charts' ``DEFAULT_POINTS``) in the database (``JobSeries``, shared by every web
    process, written by the runner when the job ends and by any call that read newer
    events): a call reads only the events after the newest of the two and cuts the kept
    points plus those again (a finished run is read once; a watched one a little at a
    time).
    """
    shared = points == DEFAULT_POINTS
    stored = JobSeries.objects.filter(job_id=job.pk, points=points)
    # The stored cut before the job's seq: whoever stored it had seen that seq committed.
    stored_seq = stored.values_list("last_seq", flat=True).first() if shared else None
    last_seq = Job.objects.filter(pk=job.pk).values_list("last_seq", flat=True).first() or 0
    if stored_seq is not None and stored_seq > last_seq:  # its events are gone
        stored.delete()
        stored_seq = None
    key = f"digits:series:{job.pk}:{points}"
    cached = cache.get(key)
    if stored_seq is not None and (cached is None or cached["last_seq"] < stored_seq):
        cached = _load(job.pk, points)
    if cached is None or cached["last_seq"] > last_seq:  # events deleted: read them again
        cached = {"last_seq": 0, "series": {}, "counts": {}}
    state = _extend(job.pk, cached, last_seq, points) if cached["last_seq"] < last_seq else cached
    cache.set(key, state, CACHE_SECONDS)
    if shared and last_seq > (stored_seq or 0):
        _save(job.pk, points, state)
    return {
        "job": job.pk, "last_seq": last_seq, "points": points, "counts": state["counts"],
        "series": {name: data.round(6).tolist() for name, data in state["series"].items()},
    }  # fmt: skip
