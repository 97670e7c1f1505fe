"""Websockets: ``/ws/jobs/<id>/`` streams one job's events, ``/ws/jobs/`` the job list.

Both authenticate (session or API token), check object permission on connect
through ``apps.core.permissions``, and otherwise accept and close at once with
4401 (anonymous) or 4404 (unknown or not visible; the codes are in
``apps.core.websockets``). After connecting, a client backfills from
``GET /api/v1/jobs/<id>/events/?after=<seq>``, so nothing is lost between
page load and subscription or across reconnects.
"""

from types import SimpleNamespace

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.core import permissions
from apps.core.websockets import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED, selected_subprotocol
from apps.jobs import events
from apps.jobs.models import Job


class _AuthenticatedConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        import asyncio

        events.bind_server_loop(asyncio.get_running_loop())
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        if not await self.authorize(user):
            await self.refuse(CLOSE_NOT_FOUND)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept(selected_subprotocol(self.scope))
        await self.on_accepted()

    async def refuse(self, code: int):
        # Accept first: a close during the handshake reaches the page as 1006.
        await self.accept(selected_subprotocol(self.scope))
        await self.close(code=code)

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def authorize(self, user) -> bool:
        raise NotImplementedError

    async def on_accepted(self):
        pass

    async def receive_json(self, content, **kwargs):
        # Clients only listen; a ping keeps idle proxies from closing the socket.
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})


class JobConsumer(_AuthenticatedConsumer):
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
        # Read again now that the group is joined: every event after this seq
        # arrives live, every event up to it is in the REST backfill. (The value
        # read in `authorize` predates the subscription: an event committed in
        # between would be in neither.)
        self.last_seq = await database_sync_to_async(self._last_seq)()
        await self.send_json({"type": "hello", "job": self.job_id, "last_seq": self.last_seq})

    def _last_seq(self):
        return Job.objects.filter(pk=self.job_id).values_list("last_seq", flat=True).first() or 0

    async def job_events(self, message):
        await self.send_json({"type": "events", "job": message["job"], "events": message["events"]})

    async def job_summary(self, message):  # not subscribed, kept for symmetry
        pass


class JobListConsumer(_AuthenticatedConsumer):
    group = events.JOB_LIST_GROUP

    async def authorize(self, user) -> bool:
        # Team roles are read once here; `can` below then needs no queries.
        await database_sync_to_async(permissions.team_roles)(user)
        self.user = user
        return True

    async def job_summary(self, message):
        job = message["job"]
        if permissions.can(self.user, permissions.VIEW, SimpleNamespace(**job)):
            await self.send_json({"type": "job", "job": job})
