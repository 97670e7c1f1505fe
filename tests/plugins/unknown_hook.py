"""A plugin with a misspelt hook (``digits_data_ingestions``): it would silently never run."""

from apps.core.plugins import hookimpl


@hookimpl
def digits_data_ingestions():
    return []
