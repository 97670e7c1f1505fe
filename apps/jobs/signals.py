"""Sharing changes that live sockets must hear about (``apps.jobs.fanout``).

A socket decides visibility in its own web process from team roles it read on
connect; when a membership or a user's standing changes, every process is told
after commit and its sockets of that user read their roles again (a user who
lost access stops receiving within a second). A job's own sharing changes reach
the sockets through ``apps.jobs.events`` (``SHARING_FIELDS``).
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from apps.accounts.models import Membership
from apps.jobs import events


def _membership_changed(sender, instance, **kwargs):
    user_id = instance.user_id
    transaction.on_commit(lambda: events.access_changed([user_id]))


def _user_changed(sender, instance, created=False, update_fields=None, **kwargs):
    if created or (update_fields and set(update_fields) <= {"last_login", "password"}):
        return
    user_id = instance.pk  # active, staff, superuser may have changed
    transaction.on_commit(lambda: events.access_changed([user_id]))


def connect() -> None:
    post_save.connect(_membership_changed, sender=Membership, dispatch_uid="live-membership")
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="live-membership-del")
    post_save.connect(_user_changed, sender=get_user_model(), dispatch_uid="live-user")
