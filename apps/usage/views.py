"""The usage page (a user's or team's usage by month, model, kind) and the audit log page."""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from apps.core.filters import filtered
from apps.usage import accounting
from apps.usage.filters import AuditEventFilterSet
from apps.usage.models import AuditAction, AuditEvent

AUDIT_PAGE = 100


@login_required
def usage(request):
    """``?user=`` or ``?team=`` (default: your own; staff: everybody) and ``?group=``."""
    group = request.GET.get("group", "month")
    if group not in accounting.GROUPS:
        raise Http404("Unknown grouping.")
    username, team = request.GET.get("user", ""), request.GET.get("team", "")
    try:
        rows, scope = accounting.scoped_usage(request.user, username=username, team_slug=team)
    except accounting.NotVisible:
        raise Http404("No such user or team.") from None
    query = {k: v for k, v in (("user", username), ("team", team), ("group", group)) if v}
    return render(
        request,
        "usage/usage.html",
        {
            "rows": accounting.report(rows, group), "group": group, "groups": accounting.GROUPS,
            "scope": scope, "username": username, "team": team,
            "teams": request.user.teams.all(), "csv_query": urlencode({**query, "format": "csv"}),
        },
    )  # fmt: skip


@login_required
def audit_log(request):
    """Security-relevant actions, newest first, filterable; administrators only."""
    if not request.user.is_staff:
        raise Http404("Not found.")
    events = filtered(AuditEventFilterSet, request.GET, AuditEvent.objects.all())
    page = Paginator(events, AUDIT_PAGE).get_page(request.GET.get("page"))
    query = urlencode([(k, v) for k, v in request.GET.lists() for v in v if k != "page"])
    return render(
        request,
        "usage/audit.html",
        {"page": page, "actions": AuditAction.choices, "page_query": query,
         "chosen": request.GET.getlist("action"), "actor": request.GET.get("actor", "")},
    )  # fmt: skip
