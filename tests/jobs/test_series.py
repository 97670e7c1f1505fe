"""A job's metric series for charts: downsampled with LTTB, covering a stated seq."""

from __future__ import annotations

import numpy as np

from apps.jobs import events
from apps.jobs.models import Job, JobSeries
from apps.jobs.series import lttb
from tests.jobs.helpers import submit_check


def test_lttb_keeps_the_ends_the_peaks_and_the_steps():
    x = np.arange(100_000, dtype=float)
    y = np.where(x < 60_000, 0.1, 0.01)  # a learning-rate step at 60,000
    y[31_337] = 5.0  # a spike
    keep = lttb(x, y, 500)
    assert len(keep) == 500 and keep[0] == 0 and keep[-1] == 99_999
    assert list(keep) == sorted(keep)
    assert 31_337 in keep, "the spike was dropped"
    kept = y[keep]
    assert set(np.round(kept, 3)) >= {0.1, 0.01, 5.0}
    assert lttb(x[:10], y[:10], 500).tolist() == list(range(10))


def test_metrics_endpoint_downsamples_each_series_and_states_its_seq(people, api_client):
    job = submit_check(people.owner, send=False)
    points = [events.event("metric", series="train/loss", step=s, value=1 / (s + 1))
              for s in range(3000)]  # fmt: skip
    points += [events.event("metric", series="lr", step=s, value=0.1) for s in (0, 1500)]
    events.append(job.pk, points + [events.event("log", level="info", message="x", stream="job")])
    client = api_client.as_user(people.owner)
    url = f"/api/v1/jobs/{job.pk}/metrics/"

    body = client.get(url, {"points": 200}).json()
    assert body["last_seq"] == Job.objects.get(pk=job.pk).last_seq >= 3003
    assert body["counts"] == {"train/loss": 3000, "lr": 2}
    loss = body["series"]["train/loss"]
    assert len(loss) == 200 and loss[0][:2] == [0, 1.0] and loss[-1][0] == 2999
    assert [p[:2] for p in body["series"]["lr"]] == [[0, 0.1], [1500, 0.1]]
    assert loss[0][2] > 1.7e9  # the wall time of the point (unix seconds)
    assert len(client.get(url).json()["series"]["train/loss"]) == 2000
    assert client.get(url, {"points": 1}).status_code == 400
    assert api_client.as_user(people.other).get(url).status_code == 404


def test_events_endpoint_filters_by_several_types(people, api_client):
    job = submit_check(people.owner, send=False)
    events.append(job.pk, [
        events.event("metric", series="loss", step=1, value=0.5),
        events.event("log", level="info", message="hello", stream="job"),
        events.event("epoch", epoch=1, step=10, row={"epoch": 1, "loss": 0.4}),
    ])  # fmt: skip
    client = api_client.as_user(people.owner)
    body = client.get(f"/api/v1/jobs/{job.pk}/events/", {"type": "log,epoch"}).json()
    assert [e["type"] for e in body["events"]] == ["log", "epoch"]
    assert body["last_seq"] == Job.objects.get(pk=job.pk).last_seq
    assert client.get(f"/api/v1/jobs/{job.pk}/events/", {"type": "log,nope"}).status_code == 400


def test_a_watched_run_is_read_a_little_at_a_time(people):
    from apps.jobs.series import metric_series

    job = submit_check(people.owner, send=False)
    events.append(job.pk, [events.event("metric", series="train/loss", step=s, value=1.0)
                           for s in range(50)])  # fmt: skip
    first = metric_series(job, points=20)
    events.append(job.pk, [events.event("metric", series="train/loss", step=s, value=0.5)
                           for s in range(50, 60)])  # fmt: skip
    later = metric_series(job, points=20)
    assert first["counts"] == {"train/loss": 50} and later["counts"] == {"train/loss": 60}
    assert later["last_seq"] > first["last_seq"]
    loss = later["series"]["train/loss"]
    assert len(loss) == 20 and loss[0][:2] == [0, 1.0] and loss[-1][:2] == [59, 0.5]


def _loss(job, steps, value=lambda s: 1 / (s + 1)):
    events.append(job.pk, [events.event("metric", series="train/loss", step=s, value=value(s))
                           for s in steps])  # fmt: skip


def _event_reads(queries) -> list[list]:
    """The SQL of each read of metric events among ``queries``."""
    return [q["sql"] for q in queries if "FROM jobs_jobevent" in q["sql"]]


def test_a_fresh_web_process_serves_the_stored_cut_of_a_finished_run(people):
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.jobs.series import metric_series, store

    job = submit_check(people.owner, send=False)
    _loss(job, range(5000), lambda s: (s % 97) / (s + 1))
    events.append(job.pk, [events.event("metric", series="lr", step=0, value=0.1)])
    store(job.pk)  # what the runner does when the job ends
    last_seq = Job.objects.get(pk=job.pk).last_seq
    assert JobSeries.objects.get(job=job).last_seq == last_seq

    cache.clear()  # another web process: nothing cached
    with CaptureQueriesContext(connection) as queries:
        answer = metric_series(job)
    assert _event_reads(queries) == [], "the events were read again"
    # The same points as a cut of all the events (the path without a stored cut).
    JobSeries.objects.all().delete()
    cache.clear()
    assert answer == metric_series(job)
    assert answer["counts"] == {"train/loss": 5000, "lr": 1} and answer["last_seq"] == last_seq
    assert len(answer["series"]["train/loss"]) == 2000
    # ... and that read stored its cut for the next process.
    assert JobSeries.objects.get(job=job).last_seq == last_seq


def test_events_after_the_stored_cut_are_added(people):
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.jobs.series import metric_series, store

    job = submit_check(people.owner, send=False)
    _loss(job, range(3000))
    store(job.pk)
    stored = Job.objects.get(pk=job.pk).last_seq
    _loss(job, range(3000, 3010), lambda s: 7.0)  # the run goes on
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        answer = metric_series(job)
    reads = _event_reads(queries)
    assert len(reads) == 1 and f"seq > {stored} " in reads[0], reads  # only the newer events
    assert answer["counts"] == {"train/loss": 3010}
    assert answer["last_seq"] == stored + 10
    loss = answer["series"]["train/loss"]
    assert len(loss) == 2000 and loss[0][:2] == [0, 1.0] and loss[-1][:2] == [3009, 7.0]
    assert sum(p[1] == 7.0 for p in loss) > 1, "the jump to 7 is drawn"
    # The shared cut moved on with it; a third process reads nothing.
    assert JobSeries.objects.get(job=job).last_seq == stored + 10
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        assert metric_series(job) == answer
    assert _event_reads(queries) == []


def test_a_deleted_job_leaves_no_stored_cut(people):
    from apps.jobs.series import metric_series

    job = submit_check(people.owner, send=False)
    _loss(job, range(10))
    metric_series(job)
    assert JobSeries.objects.filter(job=job).count() == 1
    Job.objects.filter(pk=job.pk).delete()
    assert not JobSeries.objects.filter(job_id=job.pk).exists()
