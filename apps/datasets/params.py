"""How a build runs, whatever the dataset's type: the page, the API and the build job all
take these two options, with these limits and defaults."""

from rest_framework import serializers

DEFAULT_PROCESSES = 2
MAX_PROCESSES = 64
DEFAULT_MAX_ERROR_PERCENT = 10


def processes_field() -> serializers.IntegerField:
    """Encoding processes of the build job."""
    return serializers.IntegerField(min_value=1, max_value=MAX_PROCESSES, default=DEFAULT_PROCESSES)


def max_error_percent_field() -> serializers.FloatField:
    """The share of bad entries above which the build fails (``apps.datasets.building``)."""
    return serializers.FloatField(min_value=0, max_value=100, default=DEFAULT_MAX_ERROR_PERCENT)
