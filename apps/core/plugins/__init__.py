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
    DatasetRecord,
    EntryError,
    Visualization,
    colour_mask,
    features_to_image,
    png_data_url,
)
from apps.core.plugins.scores import mean_score, segmentation_scores

__all__ = [
    "INFERENCE", "STAGES", "TEST", "TRAIN", "VAL",
    "ConfinedReader", "DataIngestion", "DatasetRecord", "EntryError", "ServerFileField", "ServerFolderField", "Visualization", "colour_mask", "confine",
    "features_to_image", "hookimpl", "mean_score", "open_confined", "png_data_url", "segmentation_scores",
]  # fmt: skip
