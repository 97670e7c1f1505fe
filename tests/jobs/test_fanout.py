"""The live fan-out under stress: slow clients, revoked access, a restarted web process.

Web processes are real (uvicorn, channels-redis settings, the fan-out's Redis
pub/sub); messages are published from this process the way the job worker does
(``apps.jobs.events`` / ``apps.jobs.fanout``). The revocation test runs the
sockets in this process (``WebsocketCommunicator``) to time the close precisely.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request

import psutil
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.db import connections

from apps.accounts.models import Membership
from apps.jobs import events, fanout
from apps.jobs.models import Job
from tests.conftest import free_port, start_web
from tests.jobs.helpers import submit_check
from tests.jobs.test_events import HOST, ORIGIN, token_for, ws  # noqa: F401 - the fixture

db = sync_to_async


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    yield
    # The ORM calls of async code ran in asgiref's thread: close its connections.
    await sync_to_async(connections.close_all)()


def connect(url: str, path: str, key: str, **kwargs):
    return websockets.connect(
        "ws" + url[4:] + path,
        additional_headers={"Authorization": f"Token {key}"},
        origin=url,
        open_timeout=20,
        **kwargs,
    )


def rest_events(url: str, key: str, job_id: int, after: int) -> list[dict]:
    """Every stored event after ``after`` (all pages), as a page's backfill reads them."""
    got: list[dict] = []
    while True:
        request = urllib.request.Request(
            f"{url}/api/v1/jobs/{job_id}/events/?after={after}",
            headers={"Authorization": f"Token {key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            page = json.load(response)
        got.extend(page["events"])
        if not page["events"] or page["events"][-1]["seq"] >= page["last_seq"]:
            return got
        after = page["events"][-1]["seq"]


def rss(process) -> int:
    return psutil.Process(process.pid).memory_info().rss


async def test_a_client_that_does_not_read_cannot_grow_the_servers_memory(start_process, people):
    """A socket whose client stops reading gets a backfill hint and the newest events.

    64 MB of events go to a client that reads nothing; the web process must not
    keep them (its memory grows by far less), and when the client reads again it
    gets what was already on the wire, then ``backfill`` from the last seq sent,
    then the newest event: enough to catch up through the REST API.
    """
    web, url = start_web(start_process)
    job = await db(submit_check)(people.owner, send=False)
    key = await db(token_for)(people.owner)
    filler = "x" * 16_000
    count = 4_000
    async with connect(url, f"/ws/jobs/{job.pk}/", key, max_queue=1, compression=None) as sock:
        hello = json.loads(await sock.recv())
        assert hello["type"] == "hello"
        first = hello["last_seq"] + 1
        before = rss(web)
        for seq in range(first, first + count):  # bare publishes: the fan-out alone
            event = {"seq": seq, "type": "log", "time": "", "data": {"message": filler}}
            await db(fanout.publish)(
                events.job_group(job.pk), {"type": "events", "job": job.pk, "events": [event]}
            )
        await asyncio.sleep(2)  # let the web process take in whatever it would keep
        grown = rss(web) - before
        assert grown < 24 * 2**20, f"the web process grew by {grown / 2**20:.0f} MB"

        got = []
        while not got or got[-1].get("events", [{}])[-1].get("seq") != first + count - 1:
            got.append(json.loads(await asyncio.wait_for(sock.recv(), 20)))
    hints = [m for m in got if m["type"] == "backfill"]
    assert hints, "no backfill hint after dropped messages"
    assert len(got) < count / 4, f"{len(got)} messages kept for a client that read nothing"
    delivered = [m["events"][0]["seq"] for m in got if m["type"] == "events"]
    hint_at = got.index(hints[0])
    before_hint = [m["events"][0]["seq"] for m in got[:hint_at] if m["type"] == "events"]
    # The hint names the last seq sent: the client backfills from there.
    assert hints[0] == {
        "type": "backfill", "job": job.pk, "after": max(before_hint, default=first - 1)
    }  # fmt: skip
    assert delivered == sorted(delivered)


async def test_a_user_whose_access_is_revoked_stops_receiving_within_a_second(ws, people):  # noqa: F811
    job = await db(submit_check)(people.team_member, send=False)
    await db(events.update)(job.pk, team=people.team, visibility="team")
    key = await db(token_for)(people.team_viewer)
    job_socket, connected, _ = await ws(f"/ws/jobs/{job.pk}/", key)
    assert connected
    assert (await job_socket.receive_json_from(timeout=10))["type"] == "hello"
    list_socket, connected, _ = await ws("/ws/jobs/", key)
    assert connected

    async def log(message):  # with progress: the job lists show that
        await db(events.append)(
            job.pk,
            [
                events.event("log", level="info", message=message, stream="job"),
                events.event("progress", progress=0.5, eta_seconds=None, text=message),
            ],
        )

    await log("seen")
    assert (await job_socket.receive_json_from(timeout=10))["events"][0]["data"][
        "message"
    ] == "seen"
    assert (await list_socket.receive_json_from(timeout=10))["job"]["id"] == job.pk

    revoked = time.monotonic()
    await db(Membership.objects.filter(team=people.team, user=people.team_viewer).delete)()
    closed = await job_socket.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4404}
    assert time.monotonic() - revoked < 1.0

    await asyncio.sleep(0.2)
    await log("not for the viewer any more")
    assert await list_socket.receive_nothing(timeout=1)
    # The owner's list still gets it: the job was not silenced for everyone.
    owner_list, _, _ = await ws("/ws/jobs/", await db(token_for)(people.team_member))
    await log("for the owner")
    assert (await owner_list.receive_json_from(timeout=10))["job"]["id"] == job.pk


async def test_a_job_made_private_closes_its_team_viewers_sockets(ws, people):  # noqa: F811
    job = await db(submit_check)(people.team_member, send=False)
    await db(events.update)(job.pk, team=people.team, visibility="team")
    key = await db(token_for)(people.team_viewer)
    socket, connected, _ = await ws(f"/ws/jobs/{job.pk}/", key)
    assert connected
    await socket.receive_json_from(timeout=10)  # hello

    made_private = time.monotonic()
    await db(events.update)(job.pk, visibility="private")
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    assert time.monotonic() - made_private < 1.0


def _append_slowly(job_id: int, count: int, interval: float, done: threading.Event) -> None:
    try:
        for step in range(count):
            events.append(job_id, [events.event("metric", series="loss", step=step, value=step)])
            time.sleep(interval)
    finally:
        connections.close_all()
        done.set()


async def test_reconnect_with_backfill_is_gap_free_across_a_web_process_restart(
    start_process, people
):
    """A client follows a job, its web process is killed and another started on the same
    port; the client reconnects, backfills from its last seq and follows to the end:
    every event exactly once, in order, while the job never stopped publishing."""
    port = free_port()
    web, url = start_web(start_process, port)
    job = await db(submit_check)(people.owner, send=False)
    key = await db(token_for)(people.owner)
    count = 120
    done = threading.Event()
    seen: list[int] = []

    async def follow(until) -> None:
        async with connect(url, f"/ws/jobs/{job.pk}/", key) as sock:
            hello = json.loads(await sock.recv())
            assert hello["type"] == "hello"
            for ev in await db(rest_events)(url, key, job.pk, seen[-1] if seen else 0):
                seen.append(ev["seq"])
            while not until():
                message = json.loads(await asyncio.wait_for(sock.recv(), 20))
                if message["type"] == "backfill":
                    new = await db(rest_events)(url, key, job.pk, seen[-1])
                    seen.extend(ev["seq"] for ev in new)
                for ev in message.get("events", []):
                    if ev["seq"] > seen[-1]:  # what the page does: older ones are shown
                        seen.append(ev["seq"])

    publisher = threading.Thread(target=_append_slowly, args=(job.pk, count, 0.05, done))
    publisher.start()
    try:
        await follow(lambda: len(seen) >= 20)
        web.kill()
        web, url = start_web(start_process, port)
        last = await db(lambda: Job.objects.get(pk=job.pk).last_seq)()
        assert last > seen[-1]  # events were published while no server was up
        final = 1 + count  # the "queued" event, then the metrics
        await follow(lambda: seen[-1] >= final)
    finally:
        await asyncio.to_thread(publisher.join, 60)
    assert seen == list(range(1, final + 1))


class _Sink:
    def __init__(self):
        self.got: list[dict] = []

    def deliver(self, group, message, text):
        self.got.append(message)

    def missed(self):
        self.got.append({"type": "missed"})


async def test_a_group_left_and_joined_again_at_once_stays_subscribed(transactional_db):
    """The last socket of a job leaves and a new one arrives in the same instant (a page
    reload): the process must end subscribed, so the new socket gets the job's events."""
    hub = fanout.Hub()
    first, second = _Sink(), _Sink()
    await hub.join("job.424242", first)
    hub.leave("job.424242", first)  # its unsubscribe is on its way ...
    await hub.join("job.424242", second)  # ... and a subscribe follows it
    await asyncio.sleep(0.2)
    await db(fanout.publish)("job.424242", {"type": "events", "job": 424242, "events": []})
    async with asyncio.timeout(5):
        while not second.got:
            await asyncio.sleep(0.02)
    assert second.got == [{"type": "events", "job": 424242, "events": []}]
    assert first.got == []
    hub.transport.close()
