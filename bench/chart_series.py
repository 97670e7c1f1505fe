"""Benchmark: a chart of a 1,000,000-step run (docs/performance.md).

    python scripts/with_test_services.py python bench/chart_series.py [--steps 1000000]
        [--points 2000]

On a database of its own (``digits_bench_chart``) a job gets ``--steps`` metric events
of one series (``train/loss``, one per step, written by PostgreSQL's generate_series)
plus a learning rate every 1,000 steps. Then:

- server, first view: ``apps.jobs.series.metric_series`` in a web process that has
  nothing cached, from the cut stored when the job ended (``JobSeries``) against the
  baseline, every metric event read and cut (the path without a stored cut).
- server: ``apps.jobs.series.metric_series`` (what ``GET /api/v1/jobs/<id>/metrics/``
  answers: each series cut to ``--points`` with LTTB) against the baseline, the page's
  previous path: every metric event read and serialized as the events API pages them.
- browser: headless Chromium draws the series with the site's chart code
  (``static/digits/charts.js`` on Chart.js), once from the downsampled answer and once
  from all the raw points (the baseline); the time from data in hand to the chart drawn.

Prints each figure and the ratio baseline / platform.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import recreate_database, require_postgres, setup_django  # noqa: E402

BENCH_DB = "digits_bench_chart"


def insert_run(job_id: int, steps: int) -> None:
    """``steps`` train/loss points (a noisy decay), an lr step every 1,000 steps.

    The loss is computed in float8: in ``numeric`` (an integer over ``5.0``) each
    ``exp`` costs PostgreSQL microseconds, a third of the million-row insert's CPU."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO jobs_jobevent (job_id, seq, type, data, created_at)
            SELECT %s, s, 'metric', jsonb_build_object('series', 'train/loss', 'step', s,
                'value', 2.3 * exp(-s / %s::float8) + 0.05 * random()),
                now() - (%s - s) * interval '10 ms'
            FROM generate_series(1, %s) AS s""",
            [job_id, steps / 5, steps, steps],
        )
        cur.execute(
            """INSERT INTO jobs_jobevent (job_id, seq, type, data, created_at)
            SELECT %s, %s + s / 1000, 'metric', jsonb_build_object('series', 'lr', 'step', s,
                'value', 0.1 * power(0.5, floor(s / (%s / 4.0)))), now()
            FROM generate_series(0, %s - 1, 1000) AS s""",
            [job_id, steps + 1, steps, steps],
        )
        cur.execute(
            "UPDATE jobs_job SET last_seq = (SELECT max(seq) FROM jobs_jobevent WHERE job_id = %s)"
            " WHERE id = %s",
            [job_id, job_id],
        )


def baseline_events(job) -> int:
    """What the page did before: every event, page after page, serialized like the API."""
    from apps.jobs.api.serializers import JobEventSerializer
    from apps.jobs.api.views import MAX_EVENTS_PAGE

    after, total = 0, 0
    while True:
        rows = list(job.events.filter(seq__gt=after).order_by("seq")[:MAX_EVENTS_PAGE])
        if not rows:
            return total
        json.dumps(JobEventSerializer(rows, many=True).data)
        total += len(rows)
        after = rows[-1].seq


RENDER = """async () => {
    const series = await (await fetch("/series.json")).json();  // data in hand, then:
    const canvas = document.getElementById("c");
    const t0 = performance.now();
    const group = DigitsCharts.group(null, { xMode: "step" });
    const chart = group.chart(canvas, { axes: { y: "loss" }, aspect: 2 });
    for (const name of Object.keys(series)) {
        const s = chart.series(name, { label: name });
        for (const p of series[name]) s.push(p[0], p[1], p[2]);
    }
    chart.update("none");
    return performance.now() - t0;
}"""


def _serve(body: str):
    return lambda route: route.fulfill(body=body, content_type="application/json")


def browser_render(payloads: dict[str, dict]) -> dict[str, float]:
    """Milliseconds to draw each payload's series in headless Chromium (the series served
    to the page as JSON, as the metrics API would)."""
    from playwright.sync_api import sync_playwright

    from tests.browser.helpers import launch

    scripts = "".join(
        f"<script>{(ROOT / path).read_text()}</script>"
        for path in ("static/vendor/chartjs/chart.umd.min.js", "static/digits/charts.js")
    )
    html = f"<html><body><div style='width:1000px'><canvas id='c'></canvas></div>{scripts}"
    out = {}
    with sync_playwright() as p:
        browser = launch(p)
        for name, payload in payloads.items():
            body = json.dumps(payload)
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.set_default_timeout(600_000)
            page.route(
                "http://bench.invalid/",
                lambda route: route.fulfill(body=html, content_type="text/html"),
            )
            page.route("http://bench.invalid/series.json", _serve(body))
            page.goto("http://bench.invalid/")
            out[name] = page.evaluate(RENDER)
            page.close()
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--points", type=int, default=2000)
    args = parser.parse_args()
    setup_django(recreate_database(require_postgres(), BENCH_DB))
    from django.contrib.auth import get_user_model
    from django.core.cache import cache

    from apps.jobs import series
    from apps.jobs.models import Job, JobSeries

    user = get_user_model().objects.create_user("bench")
    job = Job.objects.create(owner=user, name="long run", kind="worker.check", status="done")
    t = time.perf_counter()
    insert_run(job.pk, args.steps)
    print(f"inserted {args.steps:,} steps in {time.perf_counter() - t:.1f} s; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip

    # A web process's first view of the finished run: before, every metric event read and
    # cut (no stored cut, nothing cached); now, the cut the runner stored at the job's end.
    JobSeries.objects.filter(job=job).delete()
    cache.clear()
    t = time.perf_counter()
    before = series.metric_series(job, args.points)
    cold_s = time.perf_counter() - t
    t = time.perf_counter()
    series.store(job.pk, args.points)  # what the runner does when the job ends
    store_s = time.perf_counter() - t
    cache.clear()
    t = time.perf_counter()
    answer = series.metric_series(job, args.points)
    first_s = time.perf_counter() - t
    print(f"server: first view in a web process {first_s:.3f} s (stored cut) vs {cold_s:.2f} s "
          f"(all events read and cut): ratio {cold_s / first_s:.0f}×; same points: "
          f"{answer == before}; storing the cut at the job's end {store_s:.2f} s")  # fmt: skip
    t = time.perf_counter()
    answer = series.metric_series(job, args.points)  # the cut series cached: what a view costs
    platform_s = time.perf_counter() - t
    json.dumps(answer)
    t = time.perf_counter()
    count = baseline_events(job)
    baseline_s = time.perf_counter() - t
    print(f"server: metric_series {platform_s:.2f} s ({sum(map(len, answer['series'].values()))}"
          f" points) vs all {count:,} events {baseline_s:.2f} s: ratio {baseline_s / platform_s:.1f}×")  # fmt: skip

    raw = {name: rows.tolist() for name, rows in series._columns(job.pk, 0, 10**12).items()}
    ms = browser_render({"downsampled": answer["series"], "raw": raw})
    print(f"browser: draw {ms['downsampled']:.0f} ms downsampled vs {ms['raw']:.0f} ms for all "
          f"points: ratio {ms['raw'] / ms['downsampled']:.1f}×")  # fmt: skip
    print(f"total to a drawn chart: {platform_s * 1000 + ms['downsampled']:.0f} ms")


if __name__ == "__main__":
    main()
