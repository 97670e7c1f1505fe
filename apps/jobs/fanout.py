"""Fan-out of live messages to this process's websockets (docs/decisions/0013-live-fan-out.md).

Publishing a message costs one Redis ``PUBLISH`` whatever the number of viewers.
Each web process holds one ``Hub`` (per event loop) with one Redis pub/sub
connection, subscribed once to every group that one of its sockets follows; the
hub decodes each message once and hands it to its sockets, which decide for
themselves (visibility, coalescing) and send the text as it came, encoded once.

Without a channel-layer URL (the embedded default: one process) the hub is fed
directly on the web server's event loop, no Redis involved.

Delivery is at most once: a message published while a process was not
subscribed (starting, reconnecting to Redis) is lost for that process. Its
sockets then get a ``backfill`` hint; every event has a sequence number and the
REST API serves any range, so clients lose nothing they cannot fetch.

Each socket has a ``Mailbox`` bounded in messages and bytes: a socket whose
client reads too slowly gets, instead of an ever longer queue, a ``backfill``
hint followed by the newest messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Protocol

import redis
import redis.asyncio
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

log = logging.getLogger(__name__)

ACCESS_GROUP = "access"  # sharing or membership changed: sockets recheck visibility
MAILBOX_MESSAGES = 64  # per socket: messages waiting to be written ...
MAILBOX_BYTES = 256 * 1024  # ... and their size
SUBSCRIBE_TIMEOUT = 10
RECONNECT_SECONDS = 0.5


class Sink(Protocol):
    """A socket as the hub sees it."""

    def deliver(self, group: str, message: dict[str, Any], text: str) -> None: ...

    def missed(self) -> None:
        """Messages may have been lost (the hub lost its subscription for a while)."""


# --- a socket's bounded queue ------------------------------------------------------------
_HINT = "hint"


class Mailbox:
    """Messages one socket has yet to send: at most ``max_messages`` and ``max_bytes``.

    ``put(text, key=k)`` replaces a waiting message of the same key (the newest
    state of one job wins). When full, everything waiting is dropped for the text
    of ``hint()`` (a backfill hint), then the new message is queued behind it.
    """

    def __init__(self, hint: Callable[[], str], max_messages=None, max_bytes=None):
        self.hint = hint
        self.max_messages = max_messages or MAILBOX_MESSAGES
        self.max_bytes = max_bytes or MAILBOX_BYTES
        self.items: OrderedDict[Any, tuple[str, Any]] = OrderedDict()
        self.bytes = 0
        self.overflows = 0
        self._ready = asyncio.Event()

    def put(self, text: str, meta: Any = None, key: Any = None) -> None:
        if key is not None and key in self.items:
            self.bytes += len(text) - len(self.items[key][0])
            self.items[key] = (text, meta)
            return
        if len(self.items) >= self.max_messages or self.bytes + len(text) > self.max_bytes:
            self.overflows += 1
            self.items.clear()
            self.bytes = 0
            self.put_hint()
        self.items[object() if key is None else key] = (text, meta)
        self.bytes += len(text)
        self._ready.set()

    def discard(self, key: Any) -> None:
        item = self.items.pop(key, None)
        if item is not None:
            self.bytes -= len(item[0])

    def put_hint(self) -> None:
        """Queue the backfill hint (once: a waiting hint stays where it is)."""
        if _HINT not in self.items:
            text = self.hint()
            self.items[_HINT] = (text, None)
            self.bytes += len(text)
            self._ready.set()

    async def get(self) -> tuple[str, Any]:
        while not self.items:
            self._ready.clear()
            await self._ready.wait()
        _, (text, meta) = self.items.popitem(last=False)
        self.bytes -= len(text)
        return text, meta


# --- transports ----------------------------------------------------------------------
def _redis_url() -> str | None:
    return getattr(settings, "CHANNEL_LAYER_URL", None) or None


def _channel(group: str) -> str:
    prefix = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {}).get("CONFIG", {})
    return f"{prefix.get('prefix', 'asgi')}:live:{group}"


class LocalTransport:
    """One process, no Redis: publishers hand messages to the hub's loop directly."""

    def __init__(self, hub: Hub):
        self.hub = hub

    async def subscribe(self, group: str) -> None:
        pass

    def unsubscribe(self, group: str) -> None:
        pass

    def close(self) -> None:
        pass


class RedisTransport:
    """One pub/sub connection per hub; a reader task dispatches what arrives."""

    def __init__(self, hub: Hub, url: str):
        self.hub = hub
        self.client = redis.asyncio.Redis.from_url(url, health_check_interval=30)
        self.pubsub = self.client.pubsub()
        self.waiting: dict[str, deque[asyncio.Future]] = {}
        self.reader: asyncio.Task | None = None
        # One writer sends (un)subscribe commands in the order they were asked for (a
        # group left and joined again ends subscribed), and redis-py opens the pub/sub
        # connection on the first command: two first commands at once would open two.
        self.commands: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.writer: asyncio.Task | None = None

    async def subscribe(self, group: str) -> None:
        channel = _channel(group)
        confirmed = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(channel, deque()).append(confirmed)
        self._command("subscribe", channel)
        await asyncio.wait_for(confirmed, SUBSCRIBE_TIMEOUT)

    def unsubscribe(self, group: str) -> None:
        self._command("unsubscribe", _channel(group))

    def _command(self, name: str, channel: str) -> None:
        self.commands.put_nowait((name, channel))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while True:
            name, channel = await self.commands.get()
            try:
                await getattr(self.pubsub, name)(channel)
            except Exception:  # noqa: BLE001 - a subscriber waiting times out
                log.warning("live fan-out: %s %s failed", name, channel, exc_info=True)
            if self.reader is None or self.reader.done():
                self.reader = asyncio.create_task(self._read())

    def close(self) -> None:
        for task in (self.reader, self.writer):
            if task:
                task.cancel()

    async def _read(self) -> None:
        while True:
            try:
                message = await self.pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis restarting: retry, tell the sockets
                log.warning("live fan-out: lost the Redis subscription", exc_info=True)
                self.hub.missed_all()
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            if message is not None:
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        channel = message["channel"].decode()
        if message["type"] == "message":
            self.hub.dispatch(channel.rsplit(":live:", 1)[1], message["data"].decode())
        elif message["type"] == "subscribe":
            waiting = self.waiting.get(channel)
            if waiting:
                future = waiting.popleft()
                if not future.done():
                    future.set_result(None)
            else:  # redis-py resubscribed after a reconnect: the gap is lost
                self.hub.missed(channel.rsplit(":live:", 1)[1])


# --- the hub -------------------------------------------------------------------------
class Hub:
    """The sockets of one event loop, by group."""

    def __init__(self):
        self.groups: dict[str, set[Sink]] = {}
        self.subscribed: set[str] = set()
        self._pending: dict[str, asyncio.Future] = {}  # subscriptions on their way
        url = _redis_url()
        self.transport = RedisTransport(self, url) if url else LocalTransport(self)

    async def join(self, group: str, sink: Sink) -> None:
        """Add ``sink`` to ``group``; returns once messages of the group reach it."""
        self.groups.setdefault(group, set()).add(sink)
        if group not in self.subscribed:
            await self._subscribe(group)

    async def _subscribe(self, group: str) -> None:
        pending = self._pending.get(group)
        if pending is None:
            pending = self._pending[group] = asyncio.ensure_future(self.transport.subscribe(group))
            pending.add_done_callback(lambda _: self._pending.pop(group, None))
        await asyncio.shield(pending)
        if group in self.groups:  # (its sockets may all have left meanwhile)
            self.subscribed.add(group)

    def leave(self, group: str, sink: Sink) -> None:
        members = self.groups.get(group)
        if members is None:
            return
        members.discard(sink)
        if not members:
            del self.groups[group]
            self.subscribed.discard(group)
            self.transport.unsubscribe(group)

    def dispatch(self, group: str, text: str) -> None:
        members = self.groups.get(group)
        if not members:
            return
        message = json.loads(text)
        for sink in tuple(members):
            try:
                sink.deliver(group, message, text)
            except Exception:  # one socket's failure must not starve the others
                log.exception("live fan-out: delivery to a socket failed")

    def missed(self, group: str) -> None:
        for sink in tuple(self.groups.get(group, ())):
            sink.missed()

    def missed_all(self) -> None:
        for group in tuple(self.groups):
            self.missed(group)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()
_local_loop: asyncio.AbstractEventLoop | None = None


def hub() -> Hub:
    """The hub of the running event loop (created on first use)."""
    global _local_loop
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = Hub()  # (a hub must not refer to its loop: weak key)
        if isinstance(found.transport, LocalTransport):
            _local_loop = loop
    return found


# --- publishing ----------------------------------------------------------------------
_publisher: redis.Redis | None = None
_publisher_lock = threading.Lock()


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, cls=DjangoJSONEncoder, separators=(",", ":"))


def publish(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to every socket following ``group``, in every web process.

    One Redis ``PUBLISH`` (or, in the embedded default, one call onto the web
    server's loop), whatever the number of sockets. Messages of one thread arrive
    in the order they were published.
    """
    global _publisher
    text = encode(message)
    url = _redis_url()
    if url:
        with _publisher_lock:
            if _publisher is None:
                _publisher = redis.Redis.from_url(url, socket_timeout=10)
        _publisher.publish(_channel(group), text)
        return
    loop = _local_loop
    if loop is not None and not loop.is_closed():
        local = _hubs.get(loop)
        if local is not None:
            loop.call_soon_threadsafe(local.dispatch, group, text)
