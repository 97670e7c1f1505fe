"""The one place that decides who may see, change or delete an owned object.

HTML views, REST viewsets and websocket consumers all ask this module, so the
answer is the same everywhere. An object a user may not see does not exist for
them (404); one they may see but not change answers 403.

Rules, for objects built on ``apps.core.models.OwnedModel``:

==========================  ====  ======  ======
who                         view  change  delete
==========================  ====  ======  ======
staff / superuser           yes   yes     yes
owner                       yes   yes     yes
team admin (shared)         yes   yes     yes
team member (shared)        yes   yes     no
team viewer (shared)        yes   no      no
any user (public)           yes   no      no
anonymous                   no    no      no
==========================  ====  ======  ======

"Shared" means visibility ``team`` or ``public`` with the object's team set.

Running custom code (network code, uploaded model files) is a permission of its own:
``can_run_custom_code``.
"""

from django.core import exceptions
from django.db.models import Q
from django.http import Http404

from apps.accounts.models import Membership, Role, Team
from apps.core.visibility import Visibility

#: The permission (``TrainedModel.Meta.permissions``) to run custom network code and
#: uploaded model files.
RUN_CUSTOM_CODE = "mlmodels.run_custom_code"

VIEW = "view"
CHANGE = "change"
DELETE = "delete"

_ROLES_FOR = {
    VIEW: {Role.VIEWER, Role.MEMBER, Role.ADMIN},
    CHANGE: {Role.MEMBER, Role.ADMIN},
    DELETE: {Role.ADMIN},
}


class PermissionDenied(exceptions.PermissionDenied):
    """The user may see the object but not do this to it (403)."""


def _is_operator(user) -> bool:
    return user.is_superuser or user.is_staff


def team_roles(user) -> dict[int, str]:
    """``{team_id: role}`` for ``user``, cached on the user object for one request."""
    if not user.is_authenticated:
        return {}
    cached = getattr(user, "_digits_team_roles", None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
        user._digits_team_roles = cached
    return cached


def visible_q(user, prefix: str = "") -> Q:
    """A filter selecting the objects ``user`` may see (``prefix`` for related lookups)."""
    if not user.is_authenticated or not user.is_active:
        return Q(pk__in=[])
    if _is_operator(user):
        return Q()
    p = prefix
    shared = Q(**{f"{p}visibility__in": [Visibility.TEAM, Visibility.PUBLIC]})
    return (
        Q(**{f"{p}owner": user})
        | Q(**{f"{p}visibility": Visibility.PUBLIC})
        | (shared & Q(**{f"{p}team_id__in": list(team_roles(user))}))
    )


def visible(queryset, user):
    """Restrict ``queryset`` of owned objects to those ``user`` may list."""
    return queryset.filter(visible_q(user))


def can(user, action: str, obj) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if _is_operator(user) or obj.owner_id == user.pk:
        return True
    role = None
    if obj.team_id is not None and obj.visibility in (Visibility.TEAM, Visibility.PUBLIC):
        role = team_roles(user).get(obj.team_id)
    if role in _ROLES_FOR[action]:
        return True
    return action == VIEW and obj.visibility == Visibility.PUBLIC


def can_share_with(user, team) -> bool:
    """Whether ``user`` may create or move objects into ``team``."""
    return _is_operator(user) or team_roles(user).get(team.pk) in _ROLES_FOR[CHANGE]


def get_object_for(user, queryset, action: str = VIEW, **lookup):
    """Fetch one object for ``user``: Http404 if invisible, PermissionDenied if not allowed."""
    try:
        obj = visible(queryset, user).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.") from None
    if action != VIEW and not can(user, action, obj):
        raise PermissionDenied(f"You may not {action} this {queryset.model._meta.verbose_name}.")
    return obj


def can_run_custom_code(user) -> bool:
    """Whether ``user`` may have their own network code or model files run (in a job).

    Granted to one user with the permission ``RUN_CUSTOM_CODE`` (superusers have every
    permission), or to a team's members and admins — not its viewers — by ticking the
    team's ``run_custom_code`` in the admin. Off for everybody else.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    if user.has_perm(RUN_CUSTOM_CODE):
        return True
    roles = team_roles(user)
    teams = [team for team, role in roles.items() if role in _ROLES_FOR[CHANGE]]
    return Team.objects.filter(pk__in=teams, run_custom_code=True).exists()
