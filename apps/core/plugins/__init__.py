"""What plugin authors import: ``from apps.core.plugins import hookimpl, DataIngestion``."""

from apps.core.plugins.fields import ServerFolderField, confine
from apps.core.plugins.hookspecs import hookimpl
from apps.core.plugins.interfaces import (
    INFERENCE,
    STAGES,
    TEST,
    TRAIN,
    VAL,
    DataIngestion,
    EntryError,
    Visualization,
)

__all__ = [
    "INFERENCE", "STAGES", "TEST", "TRAIN", "VAL",
    "DataIngestion", "EntryError", "ServerFolderField", "Visualization", "confine", "hookimpl",
]  # fmt: skip
