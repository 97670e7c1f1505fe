from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from apps.jobs.models import Job, JobStatus


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, turned to UTC: Python takes offsets up to ±23:59, PostgreSQL only
    up to ±15:59 (beyond, the query failed with a server error)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC time
            raise forms.ValidationError("Out of range.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class NumberInFilter(django_filters.BaseInFilter, django_filters.NumberFilter):
    """``?id=3,5,8``: the jobs with these ids (a page's rows, read again after a reconnect)."""


class JobFilterSet(django_filters.FilterSet):
    id = NumberInFilter(field_name="id", lookup_expr="in")
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices)
    kind = django_filters.CharFilter()
    queue = django_filters.CharFilter()
    owner = django_filters.CharFilter(field_name="owner__username")
    team = django_filters.CharFilter(field_name="team__slug")
    name = django_filters.CharFilter(lookup_expr="icontains")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Job
        fields = ["status", "kind", "queue", "owner", "team", "visibility", "name"]
