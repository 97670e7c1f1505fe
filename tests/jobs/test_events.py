"""Live events over websockets, and the REST backfill that makes reconnecting lossless.

The sockets run in this process (``WebsocketCommunicator`` on the real ASGI
application and the channels-redis layer); the job runs on a worker process,
which publishes to the same channel layer.
"""

import asyncio
from datetime import datetime

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.db import connections

from apps.accounts.models import ApiToken
from apps.jobs import events, services
from apps.jobs.models import Job
from digits_site.asgi import application
from tests.jobs.helpers import no_messages, row, send_message, submit_check

HOST = (b"host", b"localhost")
ORIGIN = (b"origin", b"http://localhost")
IDLE_SECONDS = 8  # more than channels-redis's 5 s blocking read (BZPOPMIN) of a quiet socket
db = sync_to_async  # every ORM call from async code goes through here


@pytest.fixture
async def ws(transactional_db):
    """Open sockets with ``await ws(path, token)``; everything is closed after the test.

    Each test gets its own channel layer instance, bound to its own event loop, and
    every consumer ends inside that loop (a task left pending at loop shutdown can
    leave channels-redis locks held for the next test).
    """
    channel_layers.backends.pop("default", None)
    opened: list[WebsocketCommunicator] = []

    async def open_socket(path: str, key: str | None, origin=ORIGIN):
        """(socket, connected, close code): a refused socket is accepted, then closed."""
        headers = [HOST, origin]
        if key:
            headers.append((b"authorization", f"Token {key}".encode()))
        socket = WebsocketCommunicator(application, path, headers=headers)
        opened.append(socket)
        connected, _ = await socket.connect(timeout=10)
        assert connected
        first = await peek(socket, timeout=10 if path.rstrip("/")[-1].isdigit() else 0.5)
        if first is not None and first["type"] == "websocket.close":
            return socket, False, first["code"]
        return socket, True, None

    yield open_socket
    for socket in opened:
        if not socket.future.done():
            await socket.disconnect()
    channel_layers.backends.pop("default", None)
    # The ORM calls of async code ran in asgiref's thread: close its connections.
    await sync_to_async(connections.close_all)()


async def peek(socket: WebsocketCommunicator, timeout: float) -> dict | None:
    """The socket's first output without taking it (None if nothing came in time)."""
    try:
        async with asyncio.timeout(timeout):
            while socket.output_queue.empty():
                await asyncio.sleep(0.01)
    except TimeoutError:
        return None
    return socket.output_queue._queue[0]


def token_for(user) -> str:
    return ApiToken.issue(user, "websocket test")[1]


async def receive_events(socket, until, timeout: float = 30) -> list[dict]:
    """Collect job events from ``socket`` until ``until(all events so far)`` holds."""
    got: list[dict] = []
    async with asyncio.timeout(timeout):
        while not until(got):
            message = await socket.receive_json_from(timeout=timeout)
            assert message["type"] == "events", message
            got.extend(message["events"])
    return got


def is_final(events) -> bool:
    return any(
        e["type"] == "status" and e["data"]["status"] in ("done", "error", "aborted")
        for e in events
    )


def comparable(event: dict) -> tuple:
    return event["seq"], event["type"], event["data"], datetime.fromisoformat(event["time"])


def seq_list(events) -> list[int]:
    return [e["seq"] for e in events]


async def test_reconnecting_client_backfills_what_it_missed(ws, people, start_worker, api_client):
    start_worker()
    job = await db(submit_check)(people.owner, send=False, steps=40, step_seconds=0.2)
    key = await db(token_for)(people.owner)
    client = await db(api_client.as_user)(people.owner)

    async def backfill(after: int, upto: int) -> list[dict]:
        response = await db(client.get)(f"/api/v1/jobs/{job.pk}/events/", {"after": after})
        assert response.status_code == 200
        events = response.json()["events"]
        assert seq_list(events) == list(range(after + 1, after + 1 + len(events)))
        return [e for e in events if e["seq"] <= upto]

    # First session: subscribe, then start the job and follow it for a while.
    socket, connected, _ = await ws(f"/ws/jobs/{job.pk}/", key)
    assert connected
    hello = await socket.receive_json_from(timeout=10)
    assert hello == {"type": "hello", "job": job.pk, "last_seq": 1}  # the "queued" event
    await db(send_message)(job)
    first_live = await receive_events(
        socket,
        lambda got: any(e["type"] == "progress" and e["data"]["progress"] >= 0.2 for e in got),
    )
    await socket.disconnect()
    seen = first_live[-1]["seq"]
    assert seq_list(first_live) == list(range(hello["last_seq"] + 1, seen + 1))

    # Offline while the job goes on.
    while (await db(row)(job)).last_seq < seen + 10:
        await asyncio.sleep(0.1)

    # Second session: reconnect, backfill the gap over REST, follow live to the end.
    socket, connected, _ = await ws(f"/ws/jobs/{job.pk}/", key)
    assert connected
    hello2 = await socket.receive_json_from(timeout=10)
    assert hello2["type"] == "hello" and hello2["last_seq"] >= seen + 10
    gap = await backfill(after=seen, upto=hello2["last_seq"])
    second_live = [] if is_final(gap) else await receive_events(socket, is_final)
    await socket.disconnect()
    assert seq_list(second_live) == list(
        range(hello2["last_seq"] + 1, hello2["last_seq"] + 1 + len(second_live))
    )

    job = await db(row)(job)
    assert job.status == "done", job.error
    initial = await backfill(after=0, upto=hello["last_seq"])  # what a page load fetched
    received = initial + first_live + gap + second_live
    assert seq_list(received) == list(range(1, job.last_seq + 1))  # no gap, no duplicate
    assert received[-1]["data"]["status"] == "done"
    # What came live is what the REST API has stored.
    stored = await backfill(after=0, upto=job.last_seq)
    assert [comparable(e) for e in received] == [comparable(e) for e in stored]


@pytest.mark.slow  # idle for IDLE_SECONDS on purpose
async def test_idle_socket_keeps_delivering(ws, people):
    """A job quiet for longer than the channel layer's blocking read (5 s) keeps its watchers.

    (A queued job, a long epoch: no event for a while is normal.)
    """
    job = await db(submit_check)(people.owner, send=False)
    key = await db(token_for)(people.owner)
    socket, connected, _ = await ws(f"/ws/jobs/{job.pk}/", key)
    assert connected
    hello = await socket.receive_json_from(timeout=10)

    await asyncio.sleep(IDLE_SECONDS)
    await db(events.append)(
        job.pk, [events.event("log", level="info", message="still here", stream="job")]
    )

    got = await receive_events(socket, lambda got: got, timeout=10)
    await socket.disconnect()
    assert [(e["seq"], e["data"]["message"]) for e in got] == [
        (hello["last_seq"] + 1, "still here")
    ]


async def test_job_list_socket_only_sends_jobs_the_user_may_see(ws, people):
    key = await db(token_for)(people.owner)
    socket, connected, _ = await ws("/ws/jobs/", key)
    assert connected

    def make_jobs():
        with no_messages():
            params = {"queue": "default", "steps": 1}
            submit = lambda owner, **kw: services.submit(  # noqa: E731
                owner=owner, kind="worker.check", params=params, **kw
            )
            hidden = [
                submit(people.other),  # a stranger's private job
                submit(people.team_member),  # a teammate's private job
            ]
            shown = [
                submit(people.team_member, team=people.team, visibility="team"),
                submit(people.owner),
            ]
        for job in hidden + shown:  # one more update each
            services.request_abort(job)
        return [j.pk for j in hidden], [j.pk for j in shown]

    hidden, shown = await db(make_jobs)()

    got: list[dict] = []
    async with asyncio.timeout(30):
        while not all(any(j["id"] == pk and j["status"] == "aborted" for j in got) for pk in shown):
            message = await socket.receive_json_from(timeout=30)
            assert message["type"] == "job"
            got.append(message["job"])
    while not await socket.receive_nothing(timeout=1):  # anything still on its way
        got.append((await socket.receive_json_from())["job"])
    await socket.disconnect()

    ids = {j["id"] for j in got}
    assert set(shown) <= ids
    assert not ids & set(hidden)
    statuses = [j["status"] for j in got if j["id"] == shown[1]]
    assert statuses[0] == "queued" and statuses[-1] == "aborted"


async def test_job_socket_refuses_strangers_anonymous_and_foreign_origins(ws, people):
    job = await db(submit_check)(people.owner, send=False)
    stranger = await db(token_for)(people.other)
    owner = await db(token_for)(people.owner)

    _, connected, code = await ws(f"/ws/jobs/{job.pk}/", stranger)
    assert (connected, code) == (False, 4404)
    _, connected, code = await ws(f"/ws/jobs/{job.pk + 10_000}/", owner)
    assert (connected, code) == (False, 4404)
    _, connected, code = await ws(f"/ws/jobs/{job.pk}/", None)
    assert (connected, code) == (False, 4401)
    _, connected, code = await ws(
        f"/ws/jobs/{job.pk}/", owner, origin=(b"origin", b"http://evil.example")
    )
    assert (connected, code) == (False, 4403)


def test_events_endpoint_pages_by_seq_and_filters_by_type(people, api_client):
    job = submit_check(people.owner, send=False)
    events.append(
        job.pk,
        [events.event("log", level="info", message=f"line {i}", stream="job") for i in range(5)]
        + [events.event("metric", series="loss", step=1, value=0.5)],
    )
    client = api_client.as_user(people.owner)
    url = f"/api/v1/jobs/{job.pk}/events/"

    body = client.get(url, {"after": 2, "limit": 3}).json()
    assert body["job"] == job.pk and body["last_seq"] == 7
    assert [e["seq"] for e in body["events"]] == [3, 4, 5]
    assert body["events"][0]["data"] == {"level": "info", "message": "line 1", "stream": "job"}
    assert [e["seq"] for e in client.get(url, {"after": 7}).json()["events"]] == []
    metrics = client.get(url, {"type": "metric"}).json()["events"]
    assert [(e["seq"], e["data"]["series"]) for e in metrics] == [(7, "loss")]
    assert client.get(url, {"after": -1}).status_code == 400
    assert api_client.as_user(people.other).get(url).status_code == 404
    assert Job.objects.get(pk=job.pk).last_seq == 7
