"""Benchmark: latency from a job event to 200 websocket clients.

    python scripts/with_test_services.py python bench/events.py [--clients 200] [--events 60]
        [--interval 0.25]

Starts the web server (uvicorn, as in production: channels-redis, PostgreSQL)
on a database of its own (``digits_bench_events``) and a Redis database of its
own for the channel layer (``--redis-db``), connects ``--clients`` websocket
clients to ``/ws/jobs/<id>/`` (``Authorization: Token`` header, an allowed
``Origin``), and then, from this process, appends ``--events`` metric events to
the job, one at a time, ``--interval`` seconds apart, through
``apps.jobs.events.append`` -- the path the job worker uses: a transaction
writing the event row and the job's sequence number, then ``group_send`` after
commit. Each event carries its send time (``time.time()`` taken just before
``append``); every client records receive time minus send time. Lost messages
are counted per client, and so are clients the server closed during the run.

The default interval is the runner's flush cadence (``FLUSH_SECONDS``): one
message per job every 0.25 s is the most a real job publishes, however many
events it batches. ``--interval 0.02`` (50 messages/s) finds the fan-out limit
of one web process instead.

Baselines in the same run, same server, same clients:

- ``raw``: the same message shape sent with a bare channels-redis
  ``group_send`` (``apps.jobs.events._send``), no database write;
- ``1 client``: ``append`` with a single client subscribed to another job.

The clients run in a child process so that their receive timestamps do not
wait for this process's database work (the GIL); all processes share one clock.
Exit status 1 when a message was lost or a client was refused or dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile, recreate_database, require_postgres, setup_django  # noqa: E402

BENCH_DB = "digits_bench_events"


# --- the clients (child process, no Django) ------------------------------------------
async def _client(url, headers, origin, index, samples, state, received):
    """One websocket client: wait for hello, then record every event's latency until closed."""
    import websockets

    try:
        async with websockets.connect(
            url, additional_headers=headers, origin=origin, max_queue=None, open_timeout=60
        ) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if hello.get("type") != "hello":
                state["refused"].append(index)
                return
            state["connected"].append(index)
            async for raw in ws:
                now = time.time()
                msg = json.loads(raw)
                if msg.get("type") != "events":
                    continue
                for ev in msg["events"]:
                    d = ev["data"]
                    samples.append((d["series"], index, d["step"], (now - d["value"]) * 1000))
                received.value += len(msg["events"])
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
        state["errors"].append(f"client {index}: {exc!r}")
    finally:
        state["finished"].append(index)


def run_clients(base_ws, key, origin, targets, ready, stop, results, received):
    """Connect one client per entry of ``targets`` (job ids); collect samples until ``stop``.

    Sets ``ready`` once every client got its hello or failed; puts a dict with the
    samples, the connected/refused counts and the errors on ``results``; counts the
    events received in ``received`` (a shared integer) as they arrive.
    """

    async def main():
        headers = {"Authorization": f"Token {key}"}
        samples = []
        state = {"connected": [], "refused": [], "errors": [], "finished": []}
        tasks = []
        for index, job_id in enumerate(targets):
            url = f"{base_ws}/ws/jobs/{job_id}/"
            tasks.append(
                asyncio.create_task(_client(url, headers, origin, index, samples, state, received))
            )
            if index % 25 == 24:  # don't flood the accept queue of a 2-core box
                await asyncio.sleep(0.05)
        while len(state["connected"]) + len(state["refused"]) + len(state["errors"]) < len(targets):
            await asyncio.sleep(0.05)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        # Clients still running now were connected to the end; the others closed early.
        dropped = sorted(set(state["connected"]) & set(state["finished"]))
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "samples": samples, "connected": len(state["connected"]),
            "refused": len(state["refused"]), "errors": state["errors"], "dropped": dropped,
        }  # fmt: skip

    results.put(asyncio.run(main()))


# --- the web server ------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web(env: dict[str, str], log_path: Path):
    port = free_port()
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "digits_site.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz/live", timeout=2)
            return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                sys.exit(
                    "web server did not start:\n" + log_path.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.2)


# --- sending -------------------------------------------------------------------------
def send_phase(series: str, job_id: int, n: int, interval: float, raw: bool) -> tuple[float, float]:
    """Send ``n`` metric events of ``series`` to ``job_id``, paced.

    Returns the mean wall time and the mean CPU time of this process per send (ms).
    """
    from django.utils import timezone

    from apps.jobs import events

    costs, cpu = [], []
    start = time.monotonic()
    for step in range(1, n + 1):
        delay = start + (step - 1) * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent, cpu_started = time.time(), time.process_time()
        if raw:
            payload = {"seq": step, "type": "metric", "time": timezone.now().isoformat(),
                       "data": {"series": series, "step": step, "value": sent}}  # fmt: skip
            events._send(
                events.job_group(job_id), {"type": "job.events", "job": job_id, "events": [payload]}
            )
        else:
            events.append(job_id, [events.event("metric", series=series, step=step, value=sent)])
        costs.append((time.time() - sent) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return statistics.mean(costs), statistics.mean(cpu)


def summarize(samples, series: str, clients: list[int], n: int) -> dict:
    lat = [s[3] for s in samples if s[0] == series]
    got: dict[int, set[int]] = {i: set() for i in clients}
    for s in samples:
        if s[0] == series and s[1] in got:
            got[s[1]].add(s[2])
    lost = sum(n - len(steps) for steps in got.values())
    return {
        "messages": len(lat), "expected": n * len(clients), "lost": lost,
        "p50": statistics.median(lat) if lat else float("nan"),
        "p95": percentile(lat, 95) if lat else float("nan"),
        "max": max(lat) if lat else float("nan"),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=60, help="events per phase")
    parser.add_argument(
        "--interval", type=float, default=0.25,
        help="seconds between events (0.25: the runner's flush cadence, apps.jobs.runner)",
    )  # fmt: skip
    parser.add_argument(
        "--drain", type=float, default=30.0,
        help="seconds to wait, after a phase, for its last messages to arrive",
    )  # fmt: skip
    parser.add_argument(
        "--redis-db", type=int, default=11,
        help="Redis database for the channel layer (kept apart from the test suite's)",
    )  # fmt: skip
    args = parser.parse_args()
    started = time.perf_counter()

    server = require_postgres()
    layer_url = os.environ.get("DIGITS_CHANNEL_LAYER_URL") or "redis://127.0.0.1:6379/2"
    layer_url = urlunsplit(urlsplit(layer_url)._replace(path=f"/{args.redis_db}"))
    redis.Redis.from_url(layer_url).flushdb()
    db_url = recreate_database(server, BENCH_DB)
    setup_django(db_url, DIGITS_CHANNEL_LAYER_URL=layer_url)

    from django.contrib.auth import get_user_model

    from apps.accounts.models import ApiToken
    from apps.jobs.models import Job

    user = get_user_model().objects.create_user("bench", password="x")
    _, key = ApiToken.issue(user, "bench")
    job = Job.objects.create(owner=user, name="fan-out", kind="worker.check", status="running")
    solo = Job.objects.create(owner=user, name="solo", kind="worker.check", status="running")

    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / "digits-bench-events-web.log"
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DIGITS_CHANNEL_LAYER_URL": layer_url,
        "PYTHONUNBUFFERED": "1",
    }
    web, url = start_web(env, log_path)
    ctx = mp.get_context("spawn")
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    received = ctx.RawValue("q", 0)  # written by the clients' single thread only
    targets = [job.pk] * args.clients + [solo.pk]
    clients = ctx.Process(
        target=run_clients,
        args=("ws" + url[4:], key, url, targets, ready, stop, results, received),
        daemon=True,
    )
    try:
        connect_started = time.perf_counter()
        clients.start()
        if not ready.wait(180):
            sys.exit("the websocket clients did not all connect in time")
        connect_s = time.perf_counter() - connect_started
        print(
            f"{args.clients} + 1 clients (on jobs {job.pk} and {solo.pk}) connecting took {connect_s:.1f} s "
            f"(web: uvicorn, channels-redis {layer_url}); {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        time.sleep(0.5)
        watched = {"web": psutil.Process(web.pid), "clients": psutil.Process(clients.pid)}

        def cpu_now():
            return {name: sum(p.cpu_times()[:2]) for name, p in watched.items()}

        cpu_before = cpu_now()
        wall_before = time.monotonic()
        cost, web_cpu, drain = {}, {}, {}
        for series, target, raw in [
            ("append", job, False),
            ("raw", job, True),
            ("solo", solo, False),
        ]:
            phase_cpu, expected = (
                cpu_now()["web"],
                received.value + args.events * targets.count(target.pk),
            )
            cost[series] = send_phase(series, target.pk, args.events, args.interval, raw=raw)
            # Let the phase's backlog drain so that it does not delay the next phase.
            sent_at = time.monotonic()
            while received.value < expected and time.monotonic() - sent_at < args.drain:
                time.sleep(0.05)
            drain[series] = time.monotonic() - sent_at
            web_cpu[series] = cpu_now()["web"] - phase_cpu
        wall = time.monotonic() - wall_before
        cpu = {name: seconds - cpu_before[name] for name, seconds in cpu_now().items()}
        stop.set()
        outcome = results.get(timeout=60)
        clients.join(timeout=30)
    finally:
        if clients.is_alive():
            clients.kill()
        web.terminate()
        try:
            web.wait(timeout=20)
        except subprocess.TimeoutExpired:
            web.kill()

    fan = list(range(args.clients))
    fan, solo_client = list(range(args.clients)), [args.clients]
    phases = [
        ("append", f"append, {args.clients} clients", fan),
        ("raw", f"raw group_send, {args.clients} clients", fan),
        ("solo", "append, 1 client", solo_client),
    ]
    rows = {
        series: summarize(outcome["samples"], series, who, args.events) for series, _, who in phases
    }
    print()
    print(
        f"{args.events} events per phase, {args.interval * 1000:.0f} ms apart; latency = receive - send (ms)"
    )
    header = (
        f"{'phase':<27} | {'p50':>7} {'p95':>7} {'max':>7} | {'received':>8} {'lost':>5} | "
        f"{'send ms':>7} {'send CPU':>8} | {'web CPU/msg':>11} | {'drain s':>7}"
    )
    print(header)
    print("-" * len(header))
    for series, name, _ in phases:
        r, (wall_ms, cpu_ms) = rows[series], cost[series]
        per_msg = web_cpu[series] * 1000 / r["messages"] if r["messages"] else float("nan")
        print(
            f"{name:<27} | {r['p50']:7.1f} {r['p95']:7.1f} {r['max']:7.1f} | "
            f"{r['messages']:>8} {r['lost']:>5} | {wall_ms:7.1f} {cpu_ms:8.1f} | {per_msg:8.2f} ms | "
            f"{drain[series]:7.1f}"
        )
    fan_r, raw_r, solo_r = rows["append"], rows["raw"], rows["solo"]
    print(
        f"ratio p50 append/raw: {fan_r['p50'] / raw_r['p50']:.2f}x, p95 {fan_r['p95'] / raw_r['p95']:.2f}x; "
        f"{args.clients} clients / 1 client p50: {fan_r['p50'] / solo_r['p50']:.2f}x, "
        f"p95 {fan_r['p95'] / solo_r['p95']:.2f}x"
    )
    lost = fan_r["lost"] + raw_r["lost"] + solo_r["lost"]
    print(
        f"clients connected {outcome['connected']} of {len(targets)}, refused {outcome['refused']}, "
        f"failed {len(outcome['errors'])}, closed by the server during the run {len(outcome['dropped'])}"
    )
    for error in outcome["errors"][:5]:
        print("  " + error)
    print(
        "CPU while sending: "
        + ", ".join(
            f"{name} {seconds:.1f} s ({seconds / wall:.0%} of one core)"
            for name, seconds in cpu.items()
        )
        + f" over {wall:.1f} s"
    )
    log_text = log_path.read_text(errors="replace")
    server_errors = log_text.count("Exception in ASGI application")
    kinds = {
        name: log_text.count(name)
        for name in ("TimeoutError: Timeout reading", "MaxConnectionsError", "over capacity")
        if name in log_text
    }
    print(f"web server errors: {server_errors} {kinds or ''}")
    print(f"messages lost: {lost}")
    print(f"total {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.2f}")
    failed = lost or outcome["refused"] or outcome["errors"] or outcome["dropped"] or server_errors
    if failed:
        print(f"FAIL: see the web server's log, {log_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
