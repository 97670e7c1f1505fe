"""Benchmark: listing jobs through the REST API on a table of 10,000 jobs.

    python scripts/with_test_services.py python bench/api_list.py [--jobs 10000] [--requests 50]

Creates its own PostgreSQL database (``digits_bench`` on the server of
``DATABASE_URL``, dropped and created again), migrates it, inserts the jobs of a
few users and teams, then lists ``GET /api/v1/jobs/?page_size=N`` with an API
token through Django's test client (the whole middleware, auth, DRF stack; no
network). For each page size it prints p50/p95 latency and the SQL queries a
page costs, and checks that the query count does not grow with the page size.
It also follows the cursor ``next`` links a few pages deep.

Baseline in the same run: the same page produced by a plain Django view (same
token check, same visibility filter, ``QuerySet.values()`` and ``JsonResponse``,
no DRF), so the ratio shows what DRF's serializers and pagination cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, recreate_database, require_postgres, setup_django  # noqa: E402

BENCH_DB = "digits_bench"
PAGE_SIZES = (10, 50, 200)
CURSOR_DEPTH = 5


def populate(n_jobs: int):
    """Users, two teams, ``n_jobs`` jobs with a realistic mix of owners and sharing.

    Returns the user the listing runs as: a team member who sees their own jobs,
    their team's shared jobs and public ones, so the visibility filter is real.
    """
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.accounts.models import Membership, Team
    from apps.jobs.models import Job

    User = get_user_model()
    users = [User.objects.create_user(f"user{i}", password="x") for i in range(6)]
    teams = [Team.objects.create(name=f"Team {i}", slug=f"team-{i}") for i in range(2)]
    for i, user in enumerate(users):
        Membership.objects.create(team=teams[i % 2], user=user, role="member")
    statuses = ["done"] * 7 + ["error", "aborted", "running"]
    jobs = []
    for i in range(n_jobs):
        owner = users[i % len(users)]
        team = teams[(i // 3) % 2] if i % 4 else None
        visibility = "private" if team is None else ("team" if i % 5 else "public")
        status = statuses[i % len(statuses)]
        jobs.append(
            Job(
                owner=owner,
                team=team,
                visibility=visibility,
                name=f"job {i}",
                kind="worker.check",
                queue="gpu" if i % 3 == 0 else "default",
                params={"steps": 20, "step_seconds": 0.5, "matrix_size": 256},
                status=status,
                progress=1.0 if status == "done" else 0.4,
                status_text=status.title(),
                attempts=1,
                last_seq=40 + i % 50,
                result={"gflops_mean": 12.5} if status == "done" else {},
            )  # fmt: skip
        )
    Job.objects.bulk_create(jobs, batch_size=2000)
    with connection.cursor() as cursor:
        # auto_now_add stamped all rows within a second; spread them over a week,
        # newest id newest, as a real table would be.
        cursor.execute(
            "UPDATE jobs_job SET created_at = now() - (%s - id) * interval '1 minute'",
            [n_jobs + 1],
        )
        cursor.execute("ANALYZE")
    return users[0]


# --- the baseline view ----------------------------------------------------------
BASELINE_FIELDS = (
    "id", "name", "kind", "queue", "params", "owner__username", "team__slug", "visibility",
    "status", "progress", "eta_seconds", "status_text", "attempts", "max_attempts",
    "abort_requested", "worker", "heartbeat_at", "error", "result", "last_seq",
    "cloned_from", "created_at", "enqueued_at", "started_at", "finished_at",
)  # fmt: skip


def baseline_view(request):
    """The same page without DRF: token check, visibility filter, values(), JsonResponse."""
    from django.http import JsonResponse

    from apps.accounts.authentication import key_from_header
    from apps.accounts.models import ApiToken
    from apps.core import permissions
    from apps.jobs.models import Job

    key = key_from_header(request.headers.get("Authorization", "").encode())
    user = ApiToken.authenticate(key) if key else None
    if user is None:
        return JsonResponse({"detail": "unauthenticated"}, status=401)
    size = int(request.GET.get("page_size", 50))
    rows = list(
        permissions.visible(Job.objects.all(), user)
        .order_by("-created_at", "-id")
        .values(*BASELINE_FIELDS)[:size]
    )
    return JsonResponse({"next": None, "previous": None, "results": rows})


def bench_urlconf():
    """The site's URLs plus ``/bench/jobs/`` (the baseline), as a module-like object."""
    from types import ModuleType

    from django.urls import path

    import digits_site.urls

    module = ModuleType("bench_urls")
    module.urlpatterns = [
        path("bench/jobs/", baseline_view),
        *digits_site.urls.urlpatterns,
    ]
    return module


# --- measuring ------------------------------------------------------------------
@dataclass
class Timings:
    """Per-request wall time and CPU time of this process (ms).

    The CPU time leaves out PostgreSQL's own work and, unlike the wall time, hardly
    moves with the load other processes put on the machine.
    """

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def timed_get(client, url: str, n: int, into: Timings | None = None) -> Timings:
    into = into if into is not None else Timings()
    for _ in range(n):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url)
        into.wall.append((time.perf_counter() - started) * 1000)
        into.cpu.append((time.process_time() - cpu_started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.content[:500])
    return into


def timed_pair(client, url_a: str, url_b: str, n: int) -> tuple[Timings, Timings]:
    """Alternate the two URLs so that background load hits both sides alike."""
    a, b = Timings(), Timings()
    for _ in range(n):
        timed_get(client, url_a, 1, a)
        timed_get(client, url_b, 1, b)
    return a, b


def count_queries(client, url: str):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries), response


def orm_json_ms(user, size: int, n: int) -> list[float]:
    """The bare data access: the visible page as dicts, dumped to JSON (no HTTP at all)."""
    from django.core.serializers.json import DjangoJSONEncoder

    from apps.core import permissions
    from apps.jobs.models import Job

    times = []
    for _ in range(n):
        started = time.perf_counter()
        rows = list(
            permissions.visible(Job.objects.all(), user)
            .order_by("-created_at", "-id")
            .values(*BASELINE_FIELDS)[:size]
        )
        json.dumps(rows, cls=DjangoJSONEncoder)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page size")
    args = parser.parse_args()

    server = require_postgres()
    started = time.perf_counter()
    setup_django(recreate_database(server, BENCH_DB))

    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings

    from apps.accounts.models import ApiToken

    user = populate(args.jobs)
    _, key = ApiToken.issue(user, "bench")
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    from apps.core import permissions
    from apps.jobs.models import Job

    visible = permissions.visible(Job.objects.all(), user).count()
    print(
        f"digits_bench: {args.jobs} jobs, {visible} visible to {user.username}; "
        f"setup {time.perf_counter() - started:.1f} s; DEBUG={settings.DEBUG}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )

    rows = []
    queries_by_size = {}
    with override_settings(ROOT_URLCONF=bench_urlconf()):
        for size in PAGE_SIZES:
            api_url = f"/api/v1/jobs/?page_size={size}"
            base_url = f"/bench/jobs/?page_size={size}"
            for url in (api_url, base_url):  # warm up: connection, caches, token touch
                timed_get(client, url, 3)
            queries, response = count_queries(client, api_url)
            body = response.json()
            assert len(body["results"]) == size, len(body["results"])
            base_queries, base_response = count_queries(client, base_url)
            assert [r["id"] for r in base_response.json()["results"]] == [
                r["id"] for r in body["results"]
            ], "the baseline must produce the same page"
            queries_by_size[size] = queries
            api, base = timed_pair(client, api_url, base_url, args.requests)
            orm = orm_json_ms(user, size, args.requests)
            rows.append((size, api, base, orm, queries, base_queries, len(response.content)))

        print()
        print(f"GET /api/v1/jobs/?page_size=N  ({args.requests} requests each; ms)")
        header = (
            f"{'N':>4} | {'API p50':>7} {'p95':>7} {'CPU':>6} | {'plain p50':>9} {'p95':>7} {'CPU':>6} | "
            f"{'ratio p50':>9} {'CPU':>6} | {'orm+json':>8} | {'queries':>7} {'plain':>5} | {'bytes':>6}"
        )
        print(header)
        print("-" * len(header))
        med = statistics.median
        for size, api, base, orm, queries, base_queries, nbytes in rows:
            print(
                f"{size:>4} | {med(api.wall):7.1f} {percentile(api.wall, 95):7.1f} {med(api.cpu):6.1f} | "
                f"{med(base.wall):9.1f} {percentile(base.wall, 95):7.1f} {med(base.cpu):6.1f} | "
                f"{med(api.wall) / med(base.wall):8.2f}x {med(api.cpu) / med(base.cpu):5.2f}x | "
                f"{med(orm):8.1f} | {queries:>7} {base_queries:>5} | {nbytes:>6}"
            )
        print(
            "(CPU: this process's CPU time per request, median; ratio: DRF API / plain Django view; "
            "orm+json: the same page as values() + json.dumps, no HTTP)"
        )
        constant = len(set(queries_by_size.values())) == 1
        print(f"queries constant: {'yes' if constant else 'no'} {queries_by_size}")

        # Follow the cursor: every page should cost the same, whatever its depth.
        print()
        print(f"cursor pages (page_size=50, following `next` {CURSOR_DEPTH} pages deep)")
        url, seen_ids, depth_queries = "/api/v1/jobs/?page_size=50", [], []
        for depth in range(1, CURSOR_DEPTH + 1):
            times = timed_get(client, url, 10)
            queries, response = count_queries(client, url)
            page = response.json()
            ids = [r["id"] for r in page["results"]]
            seen_ids += ids
            depth_queries.append(queries)
            print(
                f"  page {depth}: p50 {statistics.median(times.wall):6.1f} ms "
                f"(CPU {statistics.median(times.cpu):5.1f} ms), {queries} queries, "
                f"ids {ids[0]}..{ids[-1]}"
            )
            url = page["next"]
            assert url, "ran out of pages"
        assert len(seen_ids) == len(set(seen_ids)), "a cursor page repeated a job"
        assert seen_ids == sorted(seen_ids, reverse=True), "cursor pages out of order"
        print(f"  no duplicates, newest first; queries per page {sorted(set(depth_queries))}")

    print(f"\ntotal {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.2f}")
    if not constant or len(set(depth_queries)) != 1:
        print("FAIL: the query count grows with the page size or depth")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
