"""The hooks a digits plugin may implement (pluggy, project name ``digits``).

A plugin is a Python package with an entry point in the group
``digits.plugins``; the entry point names its *hook module*, which implements
some of these functions decorated with ``@hookimpl``. Hook modules are imported
while Django's settings load, so they must not import models or forms at module
level: import them inside the hook functions.
"""

import pluggy

hookspec = pluggy.HookspecMarker("digits")
hookimpl = pluggy.HookimplMarker("digits")


@hookspec
def digits_django_app():
    """Return the dotted path of the plugin's Django app (``"my_plugin"`` or an AppConfig path).

    The app is added to ``INSTALLED_APPS``: its models, migrations, templates
    (``templates/<app>/``), static files (``static/<app>/``) and admin are
    wired in. A ``urls.py`` in the app is mounted at ``/plugins/<name>/`` and an
    ``api/urls.py`` at ``/api/v1/plugins/<name>/``, where ``<name>`` is the
    entry point's name.
    """


@hookspec
def digits_data_ingestion():
    """Return a list of ``apps.core.plugins.DataIngestion`` subclasses (dataset types)."""


@hookspec
def digits_visualizations():
    """Return a list of ``apps.core.plugins.Visualization`` subclasses (model output views)."""


@hookspec
def digits_job_kinds():
    """Return a list of ``apps.jobs.kinds.JobKind`` subclasses the plugin adds."""
