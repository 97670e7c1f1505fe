"""The audit log: security-relevant actions, written from signals wherever they happen.

Logins (and failed ones), logouts, API tokens created and revoked, sharing changes of any
owned object, permission changes (staff and superuser flags, user permissions and groups,
team memberships and roles, a team's custom-code right), quota changes and deletes. The
signals fire whichever path made the change (pages, API, admin, shell); who made it is the
user of the request being served (``AuditMiddleware``), if any.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from apps.accounts.models import ApiToken, Membership, Team
from apps.core.models import OwnedModel
from apps.usage.models import AuditAction, AuditEvent, Quota

_request: ContextVar = ContextVar("audit_request", default=None)
#: Fields of a user whose change is a permission change.
USER_RIGHTS = ("is_staff", "is_superuser", "is_active")


class AuditMiddleware:
    """Remembers the request being served, so that signals know who acted and from where."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def _who(request, actor):
    if actor is None and request is not None:
        user = getattr(request, "user", None)  # DRF sets it here once it authenticates
        actor = user if user is not None and user.is_authenticated else None
    ip = request.META.get("REMOTE_ADDR") if request is not None else None
    return actor, ip


def record(action: str, target=None, *, actor=None, detail: dict[str, Any] | None = None,
           request=None, target_name: str = "") -> AuditEvent:  # fmt: skip
    """Write one audit event; ``target`` is the object acted on (or None)."""
    actor, ip = _who(request if request is not None else _request.get(), actor)
    return AuditEvent.objects.create(
        action=action,
        actor=actor if actor is not None and actor.pk else None,
        actor_name=actor.get_username() if actor is not None else "",
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None and target.pk is not None else "",
        target=(target_name or str(target or ""))[:300],
        detail=detail or {},
        ip=ip or None,
    )


# --- logins ---------------------------------------------------------------------------------
def _logged_in(sender, request, user, **kwargs):
    record(AuditAction.LOGIN, user, actor=user, request=request)


def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        record(AuditAction.LOGOUT, user, actor=user, request=request)


def _login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    record(
        AuditAction.LOGIN_FAILED, request=request, target_name=username,
        detail={"username": username},
    )  # fmt: skip


# --- tokens, quotas -------------------------------------------------------------------------
def _token_saved(sender, instance, created, **kwargs):
    if created:
        detail = {"user": instance.user.get_username(), "scope": instance.scope}
        record(AuditAction.TOKEN_CREATED, instance, detail=detail)


def _token_deleted(sender, instance, **kwargs):
    record(AuditAction.TOKEN_REVOKED, instance, detail={"user_id": instance.user_id})


def _quota_changed(sender, instance, created=None, **kwargs):
    fields = ("concurrent_jobs", "concurrent_gpus", "gpu_hours_per_month", "storage_bytes",
              "max_processes", "max_steps", "max_epochs", "max_image_side")  # fmt: skip
    detail = {name: getattr(instance, name) for name in fields}
    detail["change"] = "deleted" if created is None else ("created" if created else "changed")
    record(AuditAction.QUOTA_CHANGED, instance, detail=detail)


# --- changes to saved rows ------------------------------------------------------------------
def _changed(sender, instance, update_fields, names) -> dict[str, list]:
    """``{field: [before, after]}`` for those of ``names`` that this save changes."""
    if instance.pk is None or instance._state.adding:
        return {}
    if update_fields is not None:
        names = [n for n in names if n in update_fields or f"{n}_id" in update_fields]
    if not names:
        return {}
    attnames = [sender._meta.get_field(n).attname for n in names]
    before = sender._default_manager.filter(pk=instance.pk).values(*attnames).first()
    if before is None:
        return {}
    return {
        name: [before[att], getattr(instance, att)]
        for name, att in zip(names, attnames, strict=True)
        if before[att] != getattr(instance, att)
    }


def _sharing(sender, instance, update_fields=None, raw=False, **kwargs):
    changes = not raw and _changed(sender, instance, update_fields, ["team", "visibility"])
    if changes:
        record(AuditAction.SHARING_CHANGED, instance, detail=changes)


def _user_rights(sender, instance, update_fields=None, raw=False, **kwargs):
    changes = not raw and _changed(sender, instance, update_fields, list(USER_RIGHTS))
    if changes:
        record(AuditAction.PERMISSION_CHANGED, instance, detail=changes)


def _team_rights(sender, instance, update_fields=None, raw=False, **kwargs):
    changes = not raw and _changed(sender, instance, update_fields, ["run_custom_code"])
    if changes:
        record(AuditAction.PERMISSION_CHANGED, instance, detail=changes)


def _membership_saved(sender, instance, created, raw=False, **kwargs):
    if not raw:
        detail = {"team": instance.team.slug, "user": instance.user.get_username(),
                  "role": instance.role, "change": "added" if created else "changed"}  # fmt: skip
        record(AuditAction.PERMISSION_CHANGED, instance, detail=detail)


def _membership_deleted(sender, instance, **kwargs):
    detail = {"team_id": instance.team_id, "user_id": instance.user_id, "change": "removed"}
    record(AuditAction.PERMISSION_CHANGED, instance, detail=detail)


def _name(obj) -> str:
    if isinstance(obj, Permission):
        return f"{obj.content_type.app_label}.{obj.codename}"
    return str(obj)


def _m2m_rights(sender, instance, action, model, pk_set, reverse, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    detail = {
        "change": action.removeprefix("post_"),
        "relation": sender._meta.model_name,
        model._meta.model_name: sorted(_name(o) for o in model.objects.filter(pk__in=pk_set or ())),
    }
    record(AuditAction.PERMISSION_CHANGED, instance, detail=detail)


def _deleted(sender, instance, **kwargs):
    detail = {}
    owner_id = getattr(instance, "owner_id", None)
    if owner_id is not None:
        detail["owner_id"] = owner_id
    record(AuditAction.DELETED, instance, detail=detail)


def connect() -> None:
    user = get_user_model()
    user_logged_in.connect(_logged_in, dispatch_uid="audit-login")
    user_logged_out.connect(_logged_out, dispatch_uid="audit-logout")
    user_login_failed.connect(_login_failed, dispatch_uid="audit-login-failed")
    post_save.connect(_token_saved, sender=ApiToken, dispatch_uid="audit-token")
    post_delete.connect(_token_deleted, sender=ApiToken, dispatch_uid="audit-token-del")
    post_save.connect(_quota_changed, sender=Quota, dispatch_uid="audit-quota")
    post_delete.connect(_quota_changed, sender=Quota, dispatch_uid="audit-quota-del")
    pre_save.connect(_user_rights, sender=user, dispatch_uid="audit-user-rights")
    pre_save.connect(_team_rights, sender=Team, dispatch_uid="audit-team-rights")
    post_save.connect(_membership_saved, sender=Membership, dispatch_uid="audit-membership")
    post_delete.connect(_membership_deleted, sender=Membership, dispatch_uid="audit-member-del")
    for through in (user.user_permissions.through, user.groups.through,
                    Group.permissions.through):  # fmt: skip
        m2m_changed.connect(_m2m_rights, sender=through, dispatch_uid=f"audit-{through}")
    for model in apps.get_models():
        if issubclass(model, OwnedModel):
            pre_save.connect(_sharing, sender=model, dispatch_uid=f"audit-sharing-{model}")
    for model in [m for m in apps.get_models() if issubclass(m, OwnedModel)] + [user, Team]:
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"audit-deleted-{model}")
