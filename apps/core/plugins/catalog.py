"""What the loaded plugins provide: dataset types and visualizations.

Their job kinds are registered by the jobs app (``apps.jobs.kinds.register_plugin_kinds``):
core knows nothing of the apps above it.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from apps.core.plugins.interfaces import DataIngestion, Visualization
from apps.core.plugins.manager import LOADED


@cache
def data_ingestion_types() -> dict[str, type[DataIngestion]]:
    """``{get_id(): class}`` of every dataset type of every loaded plugin."""
    found: dict[str, type[DataIngestion]] = {}
    for info, cls in settings.PLUGINS.collect("digits_data_ingestion", DataIngestion):
        if info.status != LOADED:  # an earlier type of this plugin failed
            continue
        try:
            type_id = cls.get_id()
            if type_id in found:
                raise ValueError(
                    f"dataset type {type_id!r} is already provided by plugin "
                    f"{found[type_id].plugin_name!r}"
                )
        except Exception as exc:
            # Fail the plugin, not the process: drop the types it already added.
            settings.PLUGINS.fail(info, exc)
            found = {k: v for k, v in found.items() if v.plugin_name != info.name}
            continue
        cls.plugin_name = info.name
        found[type_id] = cls
    return found


def get_data_ingestion(type_id: str) -> type[DataIngestion]:
    try:
        return data_ingestion_types()[type_id]
    except KeyError:
        raise LookupError(f"no installed plugin provides the dataset type {type_id!r}") from None


@cache
def visualization_types() -> dict[str, type[Visualization]]:
    return {
        cls.get_id(): cls
        for _, cls in settings.PLUGINS.collect("digits_visualizations", Visualization)
    }
