"""A plugin whose hook module cannot be imported (a dependency that is not installed)."""

import frobnicate  # noqa: F401  deliberately missing

from apps.core.plugins import hookimpl


@hookimpl
def digits_data_ingestion():
    return []
