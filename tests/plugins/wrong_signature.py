"""A plugin whose hook takes an argument the hook specification does not have."""

from apps.core.plugins import hookimpl


@hookimpl
def digits_data_ingestion(request):
    return []
