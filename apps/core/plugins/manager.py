"""Discovering, loading and reporting plugins.

``load()`` runs while settings load (it decides ``INSTALLED_APPS``); the rest of
the platform asks ``registry`` what was found. Two entry point groups are read:
``digits.plugins`` (each entry point names a hook module) and DIGITS' view group
``digits.plugins.view`` (each names a ``Visualization`` class, as in DIGITS, or a hook
module). A class is wrapped in the two hooks it implies: its view and its Django app. A plugin that fails to import,
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
from apps.core.plugins.hookspecs import hookimpl
from apps.core.plugins.interfaces import Visualization

log = logging.getLogger(__name__)

GROUP = "digits.plugins"
VIEW_GROUP = "digits.plugins.view"
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
    module: Any = None  # the hook module (or a ViewClassHooks)
    group: str = GROUP

    @property
    def app_label(self) -> str | None:
        """The app's module path (what ``urls.py`` is looked up under)."""
        if not self.django_app:
            return None
        return (
            self.django_app.split(".apps.")[0] if ".apps." in self.django_app else self.django_app
        )


class ViewClassHooks:
    """The hooks of a plugin whose entry point names a ``Visualization`` class (DIGITS' way)."""

    def __init__(self, view: type[Visualization]):
        self.view = view

    @hookimpl
    def digits_visualizations(self):
        return [self.view]

    @hookimpl
    def digits_django_app(self):
        return self.view.get_django_app()


def _hooks_of(loaded: Any) -> Any:
    """What an entry point named, as something pluggy registers: a module or a view's hooks."""
    if isinstance(loaded, ModuleType):
        return loaded
    if isinstance(loaded, type) and issubclass(loaded, Visualization):
        return ViewClassHooks(loaded)
    raise TypeError(f"{loaded!r} is neither a hook module nor a Visualization subclass")


class PluginRegistry:
    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("digits")
        self.manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}

    # --- loading ---------------------------------------------------------------------
    def load(self, eps: Iterable[EntryPoint] | None = None, disabled: Iterable[str] = ()) -> None:
        disabled = set(disabled)
        if eps is None:
            eps = installed_entry_points()
        for ep in sorted(eps, key=lambda e: e.name):
            info = PluginInfo(name=ep.name, entry_point=ep.value, status=LOADED, group=ep.group)
            if ep.dist is not None:
                info.version, info.distribution = ep.dist.version, ep.dist.name
            if ep.name in self.plugins:  # e.g. a data plugin and a view plugin of one name
                info.name = f"{ep.name} ({ep.value})"
                self.plugins[info.name] = info
                self.fail(info, ValueError(f"the plugin name {ep.name!r} is already taken"))
                continue
            self.plugins[ep.name] = info
            if ep.name in disabled:
                info.status = DISABLED
                continue
            self._register(info, ep)

    def _register(self, info: PluginInfo, ep: EntryPoint) -> None:
        try:
            module = _hooks_of(ep.load())
            self._validate(module)
            self.manager.register(module, name=info.name)
            info.module = module
            info.hooks = sorted(impl.name for impl in self.manager.get_hookcallers(module) or [])
            if "digits_django_app" in info.hooks:
                info.django_app = module.digits_django_app()
        except Exception as exc:
            self.fail(info, exc)

    def _validate(self, module: Any) -> None:
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
        """Each loaded plugin's app, once (a package may hold a data plugin and a view)."""
        return list(dict.fromkeys(p.django_app for p in self.loaded() if p.django_app))

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


def installed_entry_points() -> list[EntryPoint]:
    """The entry points of both groups, from one scan of the installed distributions (each
    ``entry_points(group=...)`` call reads every distribution's metadata again)."""
    found = entry_points()
    return [*found.select(group=GROUP), *found.select(group=VIEW_GROUP)]


def load(disabled: Iterable[str] = (), extra: Iterable[str] = ()) -> PluginRegistry:
    """Discover the installed plugins (once, at settings time).

    ``extra`` adds ``name=module`` (or ``name=module:ViewClass``) specs as if they were
    installed entry points (``DIGITS_EXTRA_PLUGINS``): for plugins under development and
    for tests.
    """
    eps = installed_entry_points()
    for spec in extra:
        name, _, value = spec.partition("=")
        eps.append(EntryPoint(name.strip(), value.strip(), GROUP))
    registry.load(eps, disabled=disabled)
    return registry
