"""Websockets: ``/ws/jobs/<id>/`` streams one job's events, ``/ws/jobs/`` the job list.

Both authenticate (session or API token), check object permission on connect
through ``apps.core.permissions``, and otherwise accept and close at once with
4401 (anonymous) or 4404 (unknown or not visible; the codes are in
``apps.core.websockets``). After connecting, a client backfills from
``GET /api/v1/jobs/<id>/events/?after=<seq>``, so nothing is lost between
page load and subscription or across reconnects.

Messages reach the sockets through this process's hub (``apps.jobs.fanout``),
not through a channel-layer group per socket. Each socket writes from its own
bounded ``Mailbox``: a client that reads too slowly gets a ``backfill`` hint and
the newest messages instead of an ever longer queue.
"""

import asyncio
from types import SimpleNamespace

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from apps.core import permissions
from apps.core.websockets import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED, selected_subprotocol
from apps.jobs import events, fanout
from apps.jobs.models import Job


def _fresh_user(user_id: int):
    """The user as stored now, team roles read (None if gone or deactivated)."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is not None:
        permissions.team_roles(user)
    return user


class _LiveConsumer(AsyncJsonWebsocketConsumer):
    # Not the channel layer: no per-socket channel, no per-socket Redis traffic.
    channel_layer_alias = None
    group = ""
    joined: tuple[str, ...] = ()
    pump: asyncio.Task | None = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        if not await self.authorize(user):
            await self.refuse(CLOSE_NOT_FOUND)
            return
        self.tasks: set[asyncio.Task] = set()
        self.hub = fanout.hub()
        self.mailbox = fanout.Mailbox(self.backfill_hint)
        self.joined = (self.group, fanout.ACCESS_GROUP)
        try:
            for group in self.joined:  # returns once the subscription is live
                await self.hub.join(group, self)
        except BaseException:
            await self.disconnect(None)
            raise
        await self.accept(selected_subprotocol(self.scope))
        await self.on_accepted()
        self.pump = asyncio.create_task(self._pump())

    async def refuse(self, code: int):
        # Accept first: a close during the handshake reaches the page as 1006.
        await self.accept(selected_subprotocol(self.scope))
        await self.close(code=code)

    async def disconnect(self, code):
        for group in self.joined:
            self.hub.leave(group, self)
        self.joined = ()
        if self.pump is not None:
            self.pump.cancel()

    async def receive_json(self, content, **kwargs):
        # Clients only listen; a ping keeps idle proxies from closing the socket.
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def _pump(self):
        """Write what the mailbox holds, one message at a time, as fast as the client reads."""
        try:
            while True:
                text, meta = await self.mailbox.get()
                if not self.stale(meta):
                    self.sent(meta)  # handed to the server: a later hint starts after it
                    await self.send(text_data=text)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the client went away; disconnect() follows
            return

    # --- the hub's side (fanout.Sink) ---------------------------------------------------
    def deliver(self, group: str, message: dict, text: str) -> None:
        if group == fanout.ACCESS_GROUP:
            if self.concerned(message):
                self.background(self.recheck())
        else:
            self.on_message(message, text)

    def missed(self) -> None:
        self.mailbox.put_hint()

    def concerned(self, message: dict) -> bool:
        """Does an access change (``{"users": [...] | None}``) concern this socket's user?"""
        if "users" not in message:
            return False
        return message["users"] is None or self.user.pk in message["users"]

    def background(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def recheck(self):
        raise NotImplementedError

    # --- per kind of socket ---------------------------------------------------------
    async def authorize(self, user) -> bool:
        raise NotImplementedError

    async def on_accepted(self):
        pass

    def on_message(self, message: dict, text: str) -> None:
        raise NotImplementedError

    def backfill_hint(self) -> str:
        raise NotImplementedError

    def stale(self, meta) -> bool:
        return False

    def sent(self, meta) -> None:
        pass


class JobConsumer(_LiveConsumer):
    async def authorize(self, user) -> bool:
        self.job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        self.last_seq = await database_sync_to_async(self._visible_last_seq)(user)
        if self.last_seq is None:
            return False
        self.group = events.job_group(self.job_id)
        return True

    def _visible_last_seq(self, user):
        return (
            Job.objects.filter(pk=self.job_id)
            .visible_to(user)
            .values_list("last_seq", flat=True)
            .first()
        )

    async def on_accepted(self):
        # Read again now that the subscription is live: every event after this seq
        # arrives live, every event up to it is in the REST backfill. (The value
        # read in `authorize` predates the subscription: an event committed in
        # between would be in neither.)
        self.last_seq = await database_sync_to_async(self._last_seq)()
        await self.send_json({"type": "hello", "job": self.job_id, "last_seq": self.last_seq})

    def _last_seq(self):
        return Job.objects.filter(pk=self.job_id).values_list("last_seq", flat=True).first() or 0

    def on_message(self, message: dict, text: str) -> None:
        if message.get("events"):
            self.mailbox.put(text, meta=message["events"][-1]["seq"])

    def stale(self, seq) -> bool:
        # Queued before hello and already counted in it (a batch commits whole).
        return seq is not None and seq <= self.last_seq

    def sent(self, seq) -> None:
        if seq is not None:
            self.last_seq = seq

    def backfill_hint(self) -> str:
        return fanout.encode({"type": "backfill", "job": self.job_id, "after": self.last_seq})

    def concerned(self, message: dict) -> bool:
        return message.get("job") == self.job_id or super().concerned(message)

    async def recheck(self):
        user = await database_sync_to_async(_fresh_user)(self.user.pk)
        visible = user and await database_sync_to_async(self._visible_last_seq)(user)
        if visible is None or user is None:
            for group in self.joined:
                self.hub.leave(group, self)
            await self.close(code=CLOSE_NOT_FOUND if user else CLOSE_UNAUTHENTICATED)


class JobListConsumer(_LiveConsumer):
    group = events.JOB_LIST_GROUP

    async def authorize(self, user) -> bool:
        # Team roles are read once here (and after access changes); `can` then
        # needs no queries.
        await database_sync_to_async(permissions.team_roles)(user)
        return True

    def on_message(self, message: dict, text: str) -> None:
        job = message["job"]
        obj = message.get("_obj")  # the hub decodes once per process: share the view
        if obj is None:
            obj = message["_obj"] = SimpleNamespace(**job)
        if permissions.can(self.user, permissions.VIEW, obj):
            self.mailbox.put(text, key=job["id"])
        else:  # no longer visible: not even an update already queued
            self.mailbox.discard(job["id"])

    def backfill_hint(self) -> str:
        return fanout.encode({"type": "backfill"})

    async def recheck(self):
        # Until the roles are read again, only own and public jobs get through.
        self.user._digits_team_roles = {}
        user = await database_sync_to_async(_fresh_user)(self.user.pk)
        if user is None:
            for group in self.joined:
                self.hub.leave(group, self)
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
