"""What plugin authors import: ``from apps.core.plugins import hookimpl, DataIngestion``."""

from apps.core.plugins.fields import (
    ConfinedReader,
    ServerFileField,
    ServerFolderField,
    confine,
    open_confined,
)
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
    "ConfinedReader", "DataIngestion", "EntryError", "ServerFileField", "ServerFolderField", "Visualization", "confine", "hookimpl",
    "open_confined",
]  # fmt: skip
