"""A plugin whose hook returns something that is not a ``DataIngestion`` subclass."""

from apps.core.plugins import hookimpl


@hookimpl
def digits_data_ingestion():
    return ["test-squares"]
