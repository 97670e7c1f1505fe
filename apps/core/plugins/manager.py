"""Discovering, loading and reporting plugins.

``load()`` runs while settings load (it decides ``INSTALLED_APPS``); the rest of
the platform asks ``registry`` what was found. A plugin that fails to import,
implements an unknown hook or a hook with the wrong signature is recorded as
failed and skipped; it never takes the server down.
"""

from __future__ import annotations

import importlib
import logging
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy

from apps.core.plugins import hookspecs

log = logging.getLogger(__name__)

GROUP = "digits.plugins"
LOADED, DISABLED, FAILED = "loaded", "disabled", "failed"


@dataclass
class PluginInfo:
    name: str
    entry_point: str
    status: str
    version: str = ""
    distribution: str = ""
    hooks: list[str] = field(default_factory=list)
    django_app: str | None = None
    error: str = ""
    module: ModuleType | None = None

    @property
    def app_label(self) -> str | None:
        """The app's module path (what ``urls.py`` is looked up under)."""
        if not self.django_app:
            return None
        return (
            self.django_app.split(".apps.")[0] if ".apps." in self.django_app else self.django_app
        )


class PluginRegistry:
    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("digits")
        self.manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}

    # --- loading ---------------------------------------------------------------------
    def load(self, eps: Iterable[EntryPoint] | None = None, disabled: Iterable[str] = ()) -> None:
        disabled = set(disabled)
        if eps is None:
            eps = entry_points(group=GROUP)
        for ep in sorted(eps, key=lambda e: e.name):
            info = PluginInfo(name=ep.name, entry_point=ep.value, status=LOADED)
            if ep.dist is not None:
                info.version, info.distribution = ep.dist.version, ep.dist.name
            self.plugins[ep.name] = info
            if ep.name in disabled:
                info.status = DISABLED
                continue
            try:
                module = ep.load()
                self._validate(module)
                self.manager.register(module, name=ep.name)
                info.module = module
                info.hooks = sorted(
                    impl.name for impl in self.manager.get_hookcallers(module) or []
                )
                if "digits_django_app" in info.hooks:
                    info.django_app = module.digits_django_app()
            except Exception as exc:
                self.fail(info, exc)

    def _validate(self, module: ModuleType) -> None:
        known = {name for name in dir(hookspecs) if name.startswith("digits_")}
        unknown = sorted(
            name for name in dir(module)
            if name.startswith("digits_") and callable(getattr(module, name)) and name not in known
        )  # fmt: skip
        if unknown:
            raise pluggy.PluginValidationError(
                module, f"unknown hook(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )

    def fail(self, info: PluginInfo, exc: BaseException) -> None:
        """Mark a plugin failed with ``exc`` (reported, its hooks no longer called)."""
        info.status = FAILED
        info.error = f"{type(exc).__name__}: {exc}"
        if info.module is not None and self.manager.is_registered(info.module):
            self.manager.unregister(info.module)
        info.module = None
        log.error("plugin %s failed to load: %s\n%s", info.name, info.error, traceback.format_exc())

    # --- querying -------------------------------------------------------------------------
    def loaded(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status == LOADED]

    def django_apps(self) -> list[str]:
        return [p.django_app for p in self.loaded() if p.django_app]

    def collect(self, hook: str, base: type | None = None) -> list[tuple[PluginInfo, Any]]:
        """Call ``hook`` on every loaded plugin; return ``(plugin, item)`` for each returned item.

        A plugin whose hook raises or returns something that is not a ``base``
        subclass is marked failed; the others are unaffected.
        """
        items = []
        for info in self.loaded():
            func = getattr(info.module, hook, None)
            if func is None:
                continue
            try:
                result = func() or []
                for item in result:
                    if base is not None and not (isinstance(item, type) and issubclass(item, base)):
                        raise TypeError(f"{hook} returned {item!r}, not a {base.__name__} subclass")
                items.extend((info, item) for item in result)
            except Exception as exc:
                self.fail(info, exc)
        return items

    def urlconfs(self, suffix: str) -> list[tuple[str, ModuleType]]:
        """``(plugin name, module)`` for each loaded plugin app that has ``<app>.<suffix>``."""
        found = []
        for info in self.loaded():
            if not info.app_label:
                continue
            try:
                found.append((info.name, importlib.import_module(f"{info.app_label}.{suffix}")))
            except ModuleNotFoundError as exc:
                if (
                    exc.name != f"{info.app_label}.{suffix}"
                    and not f"{info.app_label}.{suffix}".startswith(exc.name or "\0")
                ):
                    self.fail(info, exc)
            except Exception as exc:
                self.fail(info, exc)
        return found


registry = PluginRegistry()


def load(disabled: Iterable[str] = (), extra: Iterable[str] = ()) -> PluginRegistry:
    """Discover the installed plugins (once, at settings time).

    ``extra`` adds ``name=module`` specs as if they were installed entry points
    (``DIGITS_EXTRA_PLUGINS``): for plugins under development and for tests.
    """
    eps = list(entry_points(group=GROUP))
    for spec in extra:
        name, _, value = spec.partition("=")
        eps.append(EntryPoint(name.strip(), value.strip(), GROUP))
    registry.load(eps, disabled=disabled)
    return registry
