"""Following a job live: its websocket, with reconnects and a backfill by sequence number.

Every event has the job's next sequence number. The follower remembers the last one it
gave out; after connecting (and after any gap) it asks ``GET jobs/<id>/events/?after=``
for what it missed, so a dropped connection loses nothing and repeats nothing. It stops
after the event that ends the job (status ``done``, ``error`` or ``aborted``).

A refusal (4401 not authenticated, 4403 forbidden origin, 4404 no such job or not
yours) will not change on retry: it raises :class:`WatchError` at once. Anything else
(a restart of the server, a proxy's idle cut) is retried with backoff.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from digits.client.errors import WatchError
from digits.client.objects import Event

if TYPE_CHECKING:
    from digits.client.api import Client

REFUSALS = {
    4401: "not authenticated (no token, or a wrong, expired or revoked one)",
    4403: "forbidden: the server does not accept this client's Origin",
    4404: "no such job, or a job you may not see",
}


def websocket_url(base_url: str, job_id: int) -> tuple[str, str]:
    """``(socket URL, Origin)`` of the job's websocket on the server at ``base_url``."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + f"/ws/jobs/{job_id}/"
    origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    return urlunsplit((scheme, parts.netloc, path, "", "")), origin


class Follower:
    """The events of one job after ``after``, in order, each once, until it ends."""

    def __init__(
        self,
        client: Client,
        job_id: int,
        after: int = 0,
        retries: int = 8,
        idle_ping: float = 20.0,
        backoff: float = 0.5,
    ):
        self.client = client
        self.job_id = job_id
        self.last = after
        self.retries = retries
        self.idle_ping = idle_ping
        self.backoff = backoff
        self.reconnects = 0
        self.done = False

    def __iter__(self) -> Iterator[Event]:
        failures = 0
        while not self.done:
            try:  # a dropped connection may hit the REST backfill as well as the socket
                yield from self._backfill()
                if self.done or self._finished_without_news():
                    return
                yield from self._stream()
                failures = 0
            except ConnectionClosed as exc:
                self._raise_refusal(exc)
                failures += 1
            except (OSError, InvalidHandshake, TimeoutError):
                failures += 1
            if not self.done:
                if failures > self.retries:
                    raise WatchError(
                        f"Lost job {self.job_id}'s websocket {failures} times; gave up."
                    )
                self.reconnects += 1
                time.sleep(min(self.backoff * 2 ** max(failures - 1, 0), 10.0))

    # --- the two sources -------------------------------------------------------------
    def _backfill(self) -> Iterator[Event]:
        while True:
            page = self.client.jobs.events(self.job_id, after=self.last)
            yield from self._accept(page["events"])
            if self.done or not page["events"] or self.last >= page["last_seq"]:
                return

    def _stream(self) -> Iterator[Event]:
        url, origin = websocket_url(self.client.url, self.job_id)
        headers = {"Origin": origin, **self.client.auth_headers()}
        with connect(url, additional_headers=headers, open_timeout=10) as socket:
            while not self.done:
                try:
                    message = json.loads(socket.recv(timeout=self.idle_ping))
                except TimeoutError:
                    socket.send(json.dumps({"type": "ping"}))
                    continue
                if message.get("type") in ("hello", "backfill"):
                    # What happened while connecting, or what the server dropped for this
                    # socket when it fell behind (a hint: fetch it by sequence number).
                    yield from self._backfill()
                elif message.get("type") == "events":
                    yield from self._events(message["events"])

    def _events(self, raw: list[dict]) -> Iterator[Event]:
        for item in raw:
            if item["seq"] > self.last + 1:
                yield from self._backfill()  # a gap: fetch it, in order
            yield from self._accept([item])

    def _accept(self, raw: list[dict]) -> Iterator[Event]:
        for item in raw:
            event = Event.from_api(item)
            if event.seq <= self.last or self.done:
                continue
            self.last = event.seq
            if event.final_status:
                self.done = True
            yield event

    def _finished_without_news(self) -> bool:
        """The job ended before we looked (its end already given out, or never streamed)."""
        job = self.client.jobs.get(self.job_id)
        if job.finished and job.last_seq <= self.last:
            self.done = True
        return self.done

    def _raise_refusal(self, exc: ConnectionClosed) -> None:
        code = exc.rcvd.code if exc.rcvd is not None else None
        if code in REFUSALS:
            raise WatchError(f"Job {self.job_id}'s websocket: {REFUSALS[code]}.", code) from None
