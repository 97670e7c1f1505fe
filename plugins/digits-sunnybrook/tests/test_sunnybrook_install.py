"""The pip-installed package is found through its entry point and shows on the new-dataset menu.

``make test`` installs the in-repo plugins with pip, as any third-party plugin is installed;
a process started afterwards (a restarted platform) discovers it.
"""

from django.conf import settings

from tests.plugins.processes import Browser, start_web


def test_the_installed_package_is_a_loaded_plugin_with_its_app():
    info = settings.PLUGINS.plugins["sunnybrook"]
    assert (info.status, info.error) == ("loaded", "")
    assert (
        info.distribution == "digits-sunnybrook" and info.entry_point == "digits_sunnybrook.hooks"
    )
    assert info.hooks == ["digits_data_ingestion", "digits_django_app"]
    assert "digits_sunnybrook" in settings.INSTALLED_APPS


def test_the_new_dataset_menu_lists_sunnybrook(client, people):
    client.force_login(people.owner)
    html = client.get("/datasets/new/").content.decode()
    images = html[html.index(">Images<") :]
    assert 'href="/datasets/new/image-sunnybrook/">Sunnybrook LV segmentation</a>' in images
    plugins = client.get("/plugins/").content.decode()
    assert 'data-plugin="sunnybrook"' in plugins and "digits-sunnybrook" in plugins


def test_a_restarted_platform_shows_sunnybrook_unless_disabled(start_process, people):
    served = Browser(start_web(start_process), people.owner)
    assert "Sunnybrook LV segmentation" in served.get("/datasets/new/").text
    assert served.get("/datasets/new/image-sunnybrook/").status == 200

    disabled = Browser(start_web(start_process, DIGITS_DISABLED_PLUGINS="sunnybrook"), people.owner)
    assert "Sunnybrook LV segmentation" not in disabled.get("/datasets/new/").text
    assert disabled.get("/datasets/new/image-sunnybrook/").status == 404
