import django_filters

from apps.mlmodels.models import TrainedModel


class TrainedModelFilterSet(django_filters.FilterSet):
    """The model list's filters, for the page and the API alike."""

    class Meta:
        model = TrainedModel
        fields = ["status", "dataset", "sweep", "visibility"]
