"""Benchmark: latency from a job event to many websocket viewers (docs/performance.md).

    python scripts/with_test_services.py python bench/events.py
        [--scenario one-job many-jobs] [--web 1 2] [--clients 1000] [--jobs 100]
        [--list-clients 100] [--events 40] [--interval 0.25] [--many-interval 0.02]

Starts the web server as production runs it (uvicorn; PostgreSQL; Redis for the
live fan-out, ``apps.jobs.fanout``) on a database of its own
(``digits_bench_events``), ``--web`` processes of it (clients spread round-robin),
connects websocket clients (``Authorization: Token`` header, an allowed
``Origin``) and appends events from this process through
``apps.jobs.events.append`` -- the path the job worker uses: a transaction
writing the event rows and the job's sequence number, then one publish per group
after commit. Each event carries its send time (``time.time()`` just before
``append``); every client records receive time minus send time.

Scenarios (each run with each ``--web`` count):

- ``one-job``: ``--clients`` viewers of one job; ``--events`` events
  ``--interval`` apart (0.25 s: the runner's flush cadence, the most one job
  publishes). Phases: ``append`` (the platform path), ``raw`` (the baseline: the
  same message published with a bare ``fanout.publish``, no database write) and
  ``1 client`` (``append`` to another job with a single viewer).
- ``many-jobs``: ``--clients`` viewers spread evenly over ``--jobs`` running jobs
  plus ``--list-clients`` job-list tabs (``/ws/jobs/``); events go round-robin to
  the jobs, ``--many-interval`` apart, each with a progress update so that the
  job list hears of it too. Phases: ``append`` and ``raw``.

Reported per phase: p50/p95/max latency, messages received and lost, backfill
hints received (a slow socket's coalescing), web CPU per delivered message.
A job-list tab may legitimately skip an intermediate state of a job when it
falls behind (it gets the newest); it has lost one only if a job's last state
never reached it and no ``backfill`` hint told it to re-read the list. Exit status 1 when a message was lost, a client was refused or
dropped, or a web process logged an error.
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
LIST = "list"  # the target of a job-list client


# --- the clients (child process, no Django) ------------------------------------------
def _record(msg, now, index, samples, state) -> int:
    """Note the latency of every event in ``msg``; returns how many were counted."""
    kind = msg.get("type")
    if kind == "events":
        for ev in msg["events"]:
            d = ev["data"]
            samples.append((d["series"], index, (msg["job"], d["step"]), (now - d["value"]) * 1000))
        return len(msg["events"])
    if kind == "job":
        job = msg["job"]
        series, step, sent = job["status_text"].split(" ")
        samples.append(
            (series + "/list", index, (job["id"], int(step)), (now - float(sent)) * 1000)
        )
        return 1
    if kind == "backfill":
        state["hints"] += 1
        samples.append(("hint", index, None, 0.0))
    return 0


async def _client(url, headers, origin, index, samples, state, received, is_list):
    """One websocket client: wait for hello, then record every event's latency until closed."""
    import websockets

    try:
        async with websockets.connect(
            url, additional_headers=headers, origin=origin, max_queue=None, open_timeout=120,
            compression="deflate" if state["deflate"] else None,
        ) as ws:  # fmt: skip
            if not is_list:
                hello = json.loads(await asyncio.wait_for(ws.recv(), 120))
                if hello.get("type") != "hello":
                    state["refused"].append(index)
                    return
            state["connected"].append(index)
            async for raw in ws:
                received.value += _record(json.loads(raw), time.time(), index, samples, state)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
        state["errors"].append(f"client {index}: {exc!r}")
    finally:
        state["finished"].append(index)


def run_clients(bases, key, targets, mine, deflate, ready, stop, results, received):
    """Connect one client per entry of ``targets`` (a job id, or LIST) whose index is in
    ``mine``, to the web processes ``bases`` in turn; collect samples until ``stop``."""

    async def main():
        headers = {"Authorization": f"Token {key}"}
        samples = []
        state = {"connected": [], "refused": [], "errors": [], "finished": [], "hints": 0,
                 "deflate": deflate}  # fmt: skip
        tasks = []
        for n, index in enumerate(mine):
            target = targets[index]
            base = bases[index % len(bases)]
            path = "/ws/jobs/" if target == LIST else f"/ws/jobs/{target}/"
            tasks.append(asyncio.create_task(_client(
                "ws" + base[4:] + path, headers, base, index, samples, state, received,
                target == LIST,
            )))  # fmt: skip
            if n % 25 == 24:  # don't flood the accept queue of a small box
                await asyncio.sleep(0.05)
        while len(state["connected"]) + len(state["refused"]) + len(state["errors"]) < len(mine):
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
            "hints": state["hints"],
        }  # fmt: skip

    results.put(asyncio.run(main()))


# --- the web servers -----------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web(env: dict[str, str], log_path: Path, deflate: bool):
    port = free_port()
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "digits_site.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log",
             "--ws-per-message-deflate", "true" if deflate else "false"],
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
def send_phase(series: str, jobs: list[int], n: int, interval: float, raw: bool, progress: bool):
    """Send ``n`` metric events of ``series``, round-robin over ``jobs``, ``interval`` apart.

    With ``progress`` each event also updates the job's progress and status text
    (``"<series> <step> <send time>"``), so that the job lists hear of it.
    Returns the mean wall time and CPU time of this process per send (ms).
    """
    from django.db.models import F
    from django.utils import timezone

    from apps.jobs import events, fanout
    from apps.jobs.models import Job

    # Raw messages continue each job's sequence (sockets skip what they already sent).
    base = dict(Job.objects.filter(pk__in=jobs).values_list("pk", "last_seq"))
    costs, cpu = [], []
    start = time.monotonic()
    for i in range(n):
        job_id, step = jobs[i % len(jobs)], i // len(jobs) + 1
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent, cpu_started = time.time(), time.process_time()
        data = {"series": series, "step": step, "value": sent}
        fields = {"progress": step / 1000, "status_text": f"{series} {step} {sent}"}
        if raw:
            payload = {"seq": base[job_id] + step, "type": "metric", "time": timezone.now().isoformat(),
                       "data": data}  # fmt: skip
            fanout.publish(events.job_group(job_id),
                           {"type": "events", "job": job_id, "events": [payload]})  # fmt: skip
            if progress:
                summary = {"id": job_id, "owner_id": None, "team_id": None,
                           "visibility": "public", "status": "running", **fields}  # fmt: skip
                fanout.publish(events.JOB_LIST_GROUP, {"type": "job", "job": summary})
        else:
            events.append(job_id, [events.event("metric", **data)], **(fields if progress else {}))
        costs.append((time.time() - sent) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    rate = n / max(time.monotonic() - start, 1e-9)
    if raw:  # the seqs used stay used: later appends continue above them
        for job_id in jobs:
            Job.objects.filter(pk=job_id).update(last_seq=F("last_seq") + (n - 1) // len(jobs) + 1)
    return statistics.mean(costs), statistics.mean(cpu), rate


def summarize(samples, series: str, expected: dict[int, set], final: dict | None = None) -> dict:
    """Latency of ``series`` and what each client in ``expected`` (index -> keys) missed.

    With ``final`` (job id -> last step), only a job's last state counts as lost
    (a job-list tab may skip intermediate ones).
    """
    lat = [s[3] for s in samples if s[0] == series]
    got: dict[int, set] = {i: set() for i in expected}
    for s in samples:
        if s[0] == series and s[1] in got:
            got[s[1]].add(s[2])
    if final is None:
        lost = sum(len(keys - got[i]) for i, keys in expected.items())
    else:  # a tab told to re-read the list (a backfill hint) has lost nothing
        hinted = {s[1] for s in samples if s[0] == "hint"}
        lost = sum(
            1
            for i in expected
            if i not in hinted
            for job, step in final.items()
            if (job, step) not in got[i]
        )
    return {
        "messages": len(lat), "expected": sum(len(k) for k in expected.values()), "lost": lost,
        "p50": statistics.median(lat) if lat else float("nan"),
        "p95": percentile(lat, 95) if lat else float("nan"),
        "max": max(lat) if lat else float("nan"),
    }  # fmt: skip


# --- one run: a scenario on N web processes ----------------------------------------------
class Run:
    def __init__(self, args, env, key, web_count: int, targets: list, log_dir: Path):
        self.args, self.targets = args, targets
        self.logs = [log_dir / f"digits-bench-events-web{i}.log" for i in range(web_count)]
        self.webs = [start_web(env, log, args.deflate) for log in self.logs]
        ctx = mp.get_context("spawn")
        self.stop, self.results = ctx.Event(), ctx.Queue()
        self.ready = [ctx.Event() for _ in range(args.client_procs)]
        # One counter per client process (each written by its single thread only).
        self.counters = [ctx.RawValue("q", 0) for _ in range(args.client_procs)]
        bases = [url for _, url in self.webs]
        self.clients = [
            ctx.Process(
                target=run_clients,
                args=(
                    bases,
                    key,
                    targets,
                    list(range(p, len(targets), args.client_procs)),
                    args.deflate,
                    self.ready[p],
                    self.stop,
                    self.results,
                    self.counters[p],
                ),
                daemon=True,
            )  # fmt: skip
            for p in range(args.client_procs)
        ]

    @property
    def received(self) -> int:
        return sum(c.value for c in self.counters)

    def cpu(self) -> dict[str, float]:
        procs = {f"web{i}": psutil.Process(p.pid) for i, (p, _) in enumerate(self.webs)}
        cpu = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
        cpu["clients"] = sum(sum(psutil.Process(c.pid).cpu_times()[:2]) for c in self.clients)
        return cpu

    def web_cpu(self) -> float:
        return sum(v for k, v in self.cpu().items() if k.startswith("web"))

    def connect(self) -> float:
        started = time.perf_counter()
        for clients in self.clients:
            clients.start()
        deadline = time.monotonic() + 300
        if not all(ready.wait(max(1, deadline - time.monotonic())) for ready in self.ready):
            sys.exit("the websocket clients did not all connect in time")
        time.sleep(3)  # let the connection storm settle before measuring
        return time.perf_counter() - started

    def phase(self, series, jobs, n, interval, raw, progress, expected_deliveries):
        """Run one sending phase; wait for its deliveries to drain. Returns its figures."""
        cpu_before, target = self.web_cpu(), self.received + expected_deliveries
        wall, send_cpu, rate = send_phase(series, jobs, n, interval, raw, progress)
        sent_at = time.monotonic()
        while self.received < target and time.monotonic() - sent_at < self.args.drain:
            time.sleep(0.05)
        return {"send": (wall, send_cpu), "rate": rate, "web_cpu": self.web_cpu() - cpu_before,
                "drain": time.monotonic() - sent_at}  # fmt: skip

    def finish(self) -> dict:
        self.stop.set()
        try:
            parts = [self.results.get(timeout=120) for _ in self.clients]
            for clients in self.clients:
                clients.join(timeout=30)
        finally:
            for clients in self.clients:
                if clients.is_alive():
                    clients.kill()
            for proc, _ in self.webs:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        outcome = {key: sum((p[key] for p in parts[1:]), parts[0][key]) for key in parts[0]}
        text = "".join(log.read_text(errors="replace") for log in self.logs)
        outcome["server_errors"] = text.count("Exception in ASGI application") + text.count(
            "Traceback"
        )
        return outcome


def print_table(title: str, rows: list[tuple[str, dict, dict]]) -> None:
    print(title)
    header = (
        f"{'phase':<34} | {'p50':>7} {'p95':>7} {'max':>7} | {'received':>8} {'lost':>5} | "
        f"{'send ms':>7} {'send CPU':>8} {'sent/s':>6} | {'web CPU/msg':>11} | {'drain s':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, r, phase in rows:
        wall_ms, cpu_ms = phase["send"]
        per_msg = phase["web_cpu"] * 1000 / r["messages"] if r["messages"] else float("nan")
        print(
            f"{name:<34} | {r['p50']:7.1f} {r['p95']:7.1f} {r['max']:7.1f} | "
            f"{r['messages']:>8} {r['lost']:>5} | {wall_ms:7.1f} {cpu_ms:8.1f} {phase['rate']:6.1f} | "
            f"{per_msg:8.3f} ms | {phase['drain']:7.1f}"
        )


def report(run: Run, outcome: dict, wall: float, cpu: dict) -> bool:
    """Print the clients' and servers' health; True when nothing failed."""
    lost_clients = outcome["refused"] + len(outcome["errors"]) + len(outcome["dropped"])
    print(
        f"clients connected {outcome['connected']} of {len(run.targets)}, refused "
        f"{outcome['refused']}, failed {len(outcome['errors'])}, closed by the server "
        f"{len(outcome['dropped'])}; backfill hints received {outcome['hints']}; "
        f"web server errors {outcome['server_errors']}"
    )
    for error in outcome["errors"][:5]:
        print("  " + error)
    print(
        "CPU while sending: "
        + ", ".join(f"{n} {s:.1f} s ({s / wall:.0%} of a core)" for n, s in cpu.items())
        + f" over {wall:.1f} s; load average {os.getloadavg()[0]:.2f}"
    )
    return not (lost_clients or outcome["server_errors"])


def one_job(args, env, key, owner, web_count: int, log_dir: Path) -> bool:
    from apps.jobs.models import Job

    job = Job.objects.create(owner=owner, name="fan-out", kind="worker.check", status="running")
    solo = Job.objects.create(owner=owner, name="solo", kind="worker.check", status="running")
    run = Run(args, env, key, web_count, [job.pk] * args.clients + [solo.pk], log_dir)
    try:
        connect_s = run.connect()
        print(f"\n== one-job: {args.clients} viewers of one job (+1 on another), "
              f"{web_count} web process(es); connecting took {connect_s:.1f} s")  # fmt: skip
        cpu_before, wall_before, phases = run.cpu(), time.monotonic(), {}
        for series, target, raw in [("raw", job, True), ("append", job, False),
                                    ("solo", solo, False)]:  # fmt: skip
            viewers = run.targets.count(target.pk)
            phases[series] = run.phase(
                series, [target.pk], args.events, args.interval, raw, False, args.events * viewers
            )
        wall = time.monotonic() - wall_before
        cpu = {n: s - cpu_before[n] for n, s in run.cpu().items()}
    finally:
        outcome = run.finish()
    steps = {(job.pk, s) for s in range(1, args.events + 1)}
    fan = {i: steps for i in range(args.clients)}
    solo_steps = {args.clients: {(solo.pk, s) for s in range(1, args.events + 1)}}
    rows = [
        (f"append, {args.clients} viewers", summarize(outcome["samples"], "append", fan),
         phases["append"]),
        (f"raw publish, {args.clients} viewers", summarize(outcome["samples"], "raw", fan),
         phases["raw"]),
        ("append, 1 viewer", summarize(outcome["samples"], "solo", solo_steps), phases["solo"]),
    ]  # fmt: skip
    print_table(f"{args.events} events per phase, {args.interval * 1000:.0f} ms apart; "
                "latency = receive - send (ms)", rows)  # fmt: skip
    healthy = report(run, outcome, wall, cpu)
    return healthy and not any(r["lost"] for _, r, _ in rows)


def many_jobs(args, env, key, owner, web_count: int, log_dir: Path) -> bool:
    from apps.jobs.models import Job

    jobs = [
        Job.objects.create(owner=owner, name=f"job {i}", kind="worker.check", status="running").pk
        for i in range(args.jobs)
    ]
    targets = [jobs[i % len(jobs)] for i in range(args.clients)] + [LIST] * args.list_clients
    run = Run(args, env, key, web_count, targets, log_dir)
    n = args.events * len(jobs) // 4  # each job gets events/4 messages per phase
    try:
        connect_s = run.connect()
        print(f"\n== many-jobs: {args.clients} viewers over {len(jobs)} running jobs + "
              f"{args.list_clients} job-list tabs, {web_count} web process(es); "
              f"connecting took {connect_s:.1f} s")  # fmt: skip
        cpu_before, wall_before, phases = run.cpu(), time.monotonic(), {}
        per_msg = args.clients // len(jobs) + args.list_clients
        for series, raw in [("raw", True), ("append", False)]:
            phases[series] = run.phase(series, jobs, n, args.many_interval, raw, True, n * per_msg)
        wall = time.monotonic() - wall_before
        cpu = {name: s - cpu_before[name] for name, s in run.cpu().items()}
    finally:
        outcome = run.finish()
    per_job = n // len(jobs)
    viewers = {
        i: {(jobs[i % len(jobs)], s) for s in range(1, per_job + 1)} for i in range(args.clients)
    }
    tabs = {i: set() for i in range(args.clients, len(targets))}
    final = dict.fromkeys(jobs, per_job)
    rows = []
    for series in ("append", "raw"):
        rows.append((f"{series}, job viewers", summarize(outcome["samples"], series, viewers),
                     phases[series]))  # fmt: skip
        rows.append((f"{series}, job-list tabs",
                     summarize(outcome["samples"], series + "/list", tabs, final),
                     {**phases[series], "web_cpu": float("nan")}))  # fmt: skip
    print_table(
        f"{n} events per phase round-robin over {len(jobs)} jobs, {args.many_interval * 1000:.0f}"
        f" ms apart ({1 / args.many_interval:.0f}/s); web CPU/msg on the viewer row counts "
        "every delivery of the phase (viewers + tabs)", rows,
    )  # fmt: skip
    for name, r, phase in rows[::2]:
        tab = rows[rows.index((name, r, phase)) + 1][1]
        total = r["messages"] + tab["messages"]
        print(f"  {name.split(',')[0]}: {total} deliveries, web CPU "
              f"{phase['web_cpu'] * 1000 / max(total, 1):.3f} ms per delivery")  # fmt: skip
    healthy = report(run, outcome, wall, cpu)
    return healthy and not any(r["lost"] for _, r, _ in rows)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--scenario", nargs="+", choices=["one-job", "many-jobs"], default=["one-job", "many-jobs"])
    add("--web", nargs="+", type=int, default=[1, 2], help="web process counts to run")
    add("--clients", type=int, default=1000, help="job viewers")
    add("--jobs", type=int, default=100, help="running jobs (many-jobs)")
    add("--list-clients", type=int, default=100, help="job-list tabs (many-jobs)")
    add("--events", type=int, default=40, help="events per phase (one-job; many-jobs: x jobs/4)")
    add("--interval", type=float, default=0.25, help="seconds between events (one-job)")
    add("--many-interval", type=float, default=0.02, help="seconds between events (many-jobs)")
    add("--client-procs", type=int, default=4, help="processes the clients are spread over")
    add(
        "--deflate",
        action="store_true",
        help="permessage-deflate (uvicorn's default, browsers offer it); off by default",
    )
    add("--drain", type=float, default=30.0, help="seconds to wait for a phase's last messages")
    add("--redis-db", type=int, default=11, help="Redis database (kept apart from the tests')")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    server = require_postgres()
    layer_url = os.environ.get("DIGITS_CHANNEL_LAYER_URL") or "redis://127.0.0.1:6379/2"
    layer_url = urlunsplit(urlsplit(layer_url)._replace(path=f"/{args.redis_db}"))
    redis.Redis.from_url(layer_url).flushdb()
    db_url = recreate_database(server, BENCH_DB)
    prefix = f"bench-events-{os.getpid()}"  # pub/sub channels are not per Redis database
    setup_django(db_url, DIGITS_CHANNEL_LAYER_URL=layer_url, DIGITS_CHANNEL_LAYER_PREFIX=prefix)

    from django.contrib.auth import get_user_model

    from apps.accounts.models import ApiToken

    owner = get_user_model().objects.create_user("bench", password="x")
    _, key = ApiToken.issue(owner, "bench")
    env = {**os.environ, "DATABASE_URL": db_url, "DIGITS_CHANNEL_LAYER_URL": layer_url,
           "DIGITS_CHANNEL_LAYER_PREFIX": prefix, "PYTHONUNBUFFERED": "1"}  # fmt: skip
    log_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; web: uvicorn, "
          f"fan-out over Redis pub/sub ({layer_url}); clients "
          f"permessage-deflate {'on' if args.deflate else 'off'}")  # fmt: skip
    ok = True
    for scenario in args.scenario:
        for web_count in args.web:
            fn = one_job if scenario == "one-job" else many_jobs
            ok = fn(args, env, key, owner, web_count, log_dir) and ok
    print(f"\ntotal {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.2f}")
    if not ok:
        print(f"FAIL: see the web servers' logs, {log_dir}/digits-bench-events-web*.log")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
