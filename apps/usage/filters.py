import django_filters

from apps.jobs.filters import UtcIsoDateTimeFilter
from apps.usage.models import AuditAction, AuditEvent


class AuditEventFilterSet(django_filters.FilterSet):
    """The audit log's filters, on its page and in the API."""

    action = django_filters.MultipleChoiceFilter(choices=AuditAction.choices)
    actor = django_filters.CharFilter(field_name="actor_name")
    target_type = django_filters.CharFilter(lookup_expr="iexact")
    target = django_filters.CharFilter(lookup_expr="icontains")
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "target_type", "target"]
