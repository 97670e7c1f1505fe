"""Broken plugins are reported and skipped; the rest of the platform keeps working.

Each broken plugin is a module in tests/plugins/. They are loaded once into a
fresh ``PluginRegistry`` (unit level) and once into real processes through
``DIGITS_EXTRA_PLUGINS`` — ``manage.py plugins``, ``manage.py check`` and a web
server — since plugins are discovered when a process's settings load.
"""

import re
from importlib.metadata import EntryPoint

import pytest

from apps.core.plugins import DataIngestion, catalog
from apps.core.plugins.manager import (
    DISABLED,
    FAILED,
    GROUP,
    LOADED,
    VIEW_GROUP,
    PluginRegistry,
)
from tests.plugins.processes import Browser, fetch, manage, plugin_rows, start_web
from tests.plugins.squares import Squares
from tests.plugins.views import AnyView, MaskView

#: plugin name → (hook module, a part of the error it must be reported with)
BROKEN = {
    "broken": ("tests.plugins.broken_import", "ModuleNotFoundError: No module named 'frobnicate'"),
    "signature": ("tests.plugins.wrong_signature", "Argument(s) {'request'} are declared"),
    "typo": ("tests.plugins.unknown_hook", "unknown hook(s) digits_data_ingestions"),
    "badreturn": (
        "tests.plugins.bad_return",
        "digits_data_ingestion returned 'test-squares', not a DataIngestion subclass",
    ),
}
#: Two working plugins (a dataset type; a Django app with pages and an API) among broken ones.
WITH_BROKEN = ",".join(
    [
        "squares=tests.plugins.squares",
        "withapp=tests.plugins.with_app.hooks",
        *(f"{name}={module}" for name, (module, _) in BROKEN.items()),
    ]
)


def registry_of(**modules: str) -> PluginRegistry:
    registry = PluginRegistry()
    registry.load([EntryPoint(name, module, GROUP) for name, module in modules.items()])
    return registry


# --- unit level ------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_plugin_is_failed_with_its_error_and_the_others_work(name):
    module, error = BROKEN[name]
    registry = registry_of(squares="tests.plugins.squares", **{name: module})
    types = registry.collect("digits_data_ingestion", DataIngestion)
    assert [(info.name, cls) for info, cls in types] == [("squares", Squares)]
    broken, squares = registry.plugins[name], registry.plugins["squares"]
    assert (broken.status, squares.status) == (FAILED, LOADED)
    assert error in broken.error
    assert broken.module is None and not registry.manager.has_plugin(name)
    assert [p.name for p in registry.loaded()] == ["squares"]


def test_a_dataset_type_id_already_taken_fails_the_plugin_not_the_process(settings):
    registry = registry_of(squares="tests.plugins.squares", twin="tests.plugins.duplicate_type")
    settings.PLUGINS = registry
    catalog.data_ingestion_types.cache_clear()
    try:
        types = catalog.data_ingestion_types()
    finally:
        catalog.data_ingestion_types.cache_clear()  # the next caller sees the real plugins
    assert types == {"test-squares": Squares}
    twin = registry.plugins["twin"]
    assert twin.status == FAILED
    assert (
        twin.error
        == "ValueError: dataset type 'test-squares' is already provided by plugin 'squares'"
    )


def test_a_disabled_plugin_is_not_even_imported():
    registry = PluginRegistry()
    registry.load([EntryPoint("broken", "tests.plugins.broken_import", GROUP)], disabled=["broken"])
    assert registry.plugins["broken"].status == DISABLED
    assert registry.plugins["broken"].error == "" and registry.loaded() == []


def test_a_plugin_app_and_its_url_modules_are_found():
    registry = registry_of(withapp="tests.plugins.with_app.hooks")
    assert registry.django_apps() == ["tests.plugins.with_app.apps.WithAppConfig"]
    assert [(name, m.__name__) for name, m in registry.urlconfs("urls")] == [
        ("withapp", "tests.plugins.with_app.urls")
    ]
    assert [(name, m.__name__) for name, m in registry.urlconfs("api.urls")] == [
        ("withapp", "tests.plugins.with_app.api.urls")
    ]


def _views_of(registry, settings):
    settings.PLUGINS = registry
    catalog.visualization_types.cache_clear()
    try:
        return catalog.visualization_types(), catalog.visualizations_for("segmentation")
    finally:
        catalog.visualization_types.cache_clear()  # the next caller sees the real plugins


def test_view_plugins_are_classes_named_in_digits_view_group(settings):
    registry = PluginRegistry()
    registry.load(
        [
            EntryPoint("masks", "tests.plugins.views:MaskView", VIEW_GROUP),
            EntryPoint("any", "tests.plugins.views:AnyView", VIEW_GROUP),
            EntryPoint("notaview", "tests.plugins.views:NotAView", VIEW_GROUP),
            EntryPoint("squares", "tests.plugins.squares", GROUP),
        ]
    )
    assert registry.plugins["masks"].hooks == ["digits_django_app", "digits_visualizations"]
    assert registry.plugins["masks"].group == VIEW_GROUP
    notaview = registry.plugins["notaview"]
    assert (
        notaview.status == FAILED and "neither a hook module nor a Visualization" in notaview.error
    )
    views, for_masks = _views_of(registry, settings)
    assert views == {"test-masks": MaskView, "test-any": AnyView}
    assert list(for_masks) == ["test-masks", "test-any"]  # the task's own views first
    assert MaskView.plugin_name == "masks"
    assert registry.django_apps() == []  # get_django_app() said None


def test_a_view_id_already_taken_or_a_name_already_used_fails_that_plugin(settings):
    registry = PluginRegistry()
    registry.load(
        [
            EntryPoint("any", "tests.plugins.views:AnyView", VIEW_GROUP),
            EntryPoint("twin", "tests.plugins.views:TwinView", VIEW_GROUP),
            EntryPoint("squares", "tests.plugins.views:MaskView", VIEW_GROUP),
            EntryPoint("squares", "tests.plugins.squares", GROUP),
        ]
    )
    views, _ = _views_of(registry, settings)
    assert views == {"test-any": AnyView, "test-masks": MaskView}  # the first "squares" loads
    assert registry.plugins["twin"].error == (
        "ValueError: view 'test-any' is already provided by plugin 'any'"
    )
    taken = [p for p in registry.plugins.values() if p.status == FAILED and p.name != "twin"]
    assert [p.name for p in taken] == ["squares (tests.plugins.squares)"]
    assert "the plugin name 'squares' is already taken" in taken[0].error


# --- processes -------------------------------------------------------------------------
def plugin_block(output: str, name: str) -> str:
    """The lines ``manage.py plugins`` prints about one plugin."""
    match = re.search(rf"^{name}\b.*?(?=^\S|\Z)", output, re.M | re.S)
    assert match, f"{name} not listed:\n{output}"
    return match.group(0)


def test_manage_plugins_lists_failures_with_their_errors():
    result = manage("plugins", DIGITS_EXTRA_PLUGINS=WITH_BROKEN)
    assert result.returncode == 0, result.stderr
    squares = plugin_block(result.stdout, "squares")
    assert "[loaded]" in squares and "test-squares (Test squares)" in squares
    withapp = plugin_block(result.stdout, "withapp")
    assert "[loaded]" in withapp
    assert "django app: tests.plugins.with_app.apps.WithAppConfig" in withapp
    for name, (module, error) in BROKEN.items():
        block = plugin_block(result.stdout, name)
        assert f"[failed]  {module}" in block
        assert error in block


def test_manage_check_warns_about_each_failed_plugin_and_passes():
    result = manage("check", DIGITS_EXTRA_PLUGINS=WITH_BROKEN)
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = dict(
        re.findall(r"\(digits\.W001\) Plugin '(\w+)' .*? failed to load: (.*?)\n\s*HINT:",
                   result.stderr, re.S)
    )  # fmt: skip
    assert sorted(warnings) == sorted(BROKEN), result.stderr
    for name, (_, error) in BROKEN.items():
        assert error in warnings[name]


def test_manage_check_is_quiet_with_working_plugins():
    result = manage("check", DIGITS_EXTRA_PLUGINS="squares=tests.plugins.squares")
    assert result.returncode == 0 and "W001" not in result.stderr, result.stderr


def test_the_web_server_reports_failed_plugins_and_serves_the_working_ones(people, start_process):
    """Pages, API, plugin URL mounting: everything but the broken plugins works."""
    url = start_web(start_process, DIGITS_EXTRA_PLUGINS=WITH_BROKEN)
    browser = Browser(url, people.owner)
    page = browser.get("/plugins/")
    assert page.status == 200
    rows = plugin_rows(page.text)
    assert "loaded" in rows["squares"].lower() and "Test squares" in rows["squares"]
    for name, (_, error) in BROKEN.items():
        assert "failed" in rows[name].lower() and error in rows[name], rows[name]
    menu = browser.get("/datasets/new/")
    assert menu.status == 200 and "Test squares" in menu.text
    # Other installed plugins may add types; none of the broken ones did.
    types = {t["id"]: t["plugin"] for t in browser.get("/api/v1/dataset-types/").json()}
    assert types["test-squares"] == "squares"
    assert not set(types.values()) & set(BROKEN)

    # A plugin app's urls.py and api/urls.py are mounted under the plugin's name.
    page = browser.get("/plugins/withapp/hello/")
    assert page.status == 200
    # Its template was found, and reverses its URL in the plugin's namespace.
    assert "Hello from the plugin page at /plugins/withapp/hello/" in page.text
    api = browser.get("/api/v1/plugins/withapp/status/")
    assert api.status == 200 and api.json() == {"plugin": "with_app", "user": people.owner.username}
    # The platform's API defaults apply to plugin APIs: no credentials, no answer.
    assert fetch(url + "/api/v1/plugins/withapp/status/").status in (401, 403)


def test_a_disabled_plugin_is_shown_as_such_and_its_type_is_gone(people, start_process):
    result = manage("plugins", DIGITS_DISABLED_PLUGINS="squares")
    assert result.returncode == 0, result.stderr
    assert "[disabled]" in plugin_block(result.stdout, "squares")
    assert "test-squares" not in result.stdout

    url = start_web(start_process, DIGITS_DISABLED_PLUGINS="squares")
    browser = Browser(url, people.owner)
    assert "disabled" in plugin_rows(browser.get("/plugins/").text)["squares"].lower()
    assert "Test squares" not in browser.get("/datasets/new/").text
    types = browser.get("/api/v1/dataset-types/").json()
    assert "test-squares" not in [t["id"] for t in types]
    refused = browser.post_json(
        "/api/v1/datasets/", {"type": "test-squares", "name": "x", "options": {"count": 2}}
    )
    assert refused.status == 400 and "Unknown dataset type" in refused.text
