"""What the loaded plugins provide: dataset types and visualizations.

Their job kinds are registered by the jobs app (``apps.jobs.kinds.register_plugin_kinds``):
core knows nothing of the apps above it.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from apps.core.plugins.interfaces import DataIngestion, Visualization
from apps.core.plugins.manager import LOADED


def _by_id(hook: str, base: type, what: str) -> dict[str, type]:
    """``{get_id(): class}`` of what ``hook`` returns in every loaded plugin.

    A plugin whose class has no id, or an id another plugin already took, is failed
    (reported, not fatal) and what it added before is dropped; ``cls.plugin_name``
    records which plugin provided each class.
    """
    found: dict[str, type] = {}
    for info, cls in settings.PLUGINS.collect(hook, base):
        if info.status != LOADED:  # an earlier class of this plugin failed
            continue
        try:
            type_id = cls.get_id()
            if type_id in found:
                raise ValueError(
                    f"{what} {type_id!r} is already provided by plugin "
                    f"{found[type_id].plugin_name!r}"
                )
        except Exception as exc:
            # Fail the plugin, not the process: drop the classes it already added.
            settings.PLUGINS.fail(info, exc)
            found = {k: v for k, v in found.items() if v.plugin_name != info.name}
            continue
        cls.plugin_name = info.name
        found[type_id] = cls
    return found


@cache
def data_ingestion_types() -> dict[str, type[DataIngestion]]:
    """``{get_id(): class}`` of every dataset type of every loaded plugin."""
    return _by_id("digits_data_ingestion", DataIngestion, "dataset type")


def get_data_ingestion(type_id: str) -> type[DataIngestion]:
    try:
        return data_ingestion_types()[type_id]
    except KeyError:
        raise LookupError(f"no installed plugin provides the dataset type {type_id!r}") from None


@cache
def visualization_types() -> dict[str, type[Visualization]]:
    """``{get_id(): class}`` of every view of every loaded plugin."""
    return _by_id("digits_visualizations", Visualization, "view")


def visualizations_for(task: str) -> dict[str, type[Visualization]]:
    """The views that show outputs of ``task``: those naming it first, then the general ones."""
    views = visualization_types()
    named = {k: v for k, v in views.items() if task in v.tasks}
    return named | {k: v for k, v in views.items() if not v.tasks}
