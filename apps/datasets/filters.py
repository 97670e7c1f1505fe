import django_filters

from apps.datasets.models import Dataset


class DatasetFilterSet(django_filters.FilterSet):
    """The dataset list's filters, for the page and the API alike."""

    class Meta:
        model = Dataset
        fields = ["type", "status", "visibility"]
