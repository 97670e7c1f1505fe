import django_filters

from apps.jobs.models import Job, JobStatus


class JobFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices)
    kind = django_filters.CharFilter()
    queue = django_filters.CharFilter()
    owner = django_filters.CharFilter(field_name="owner__username")
    team = django_filters.CharFilter(field_name="team__slug")
    name = django_filters.CharFilter(lookup_expr="icontains")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Job
        fields = ["status", "kind", "queue", "owner", "team", "visibility", "name"]
