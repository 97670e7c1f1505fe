from apps.core.plugins import hookimpl


@hookimpl
def digits_django_app():
    return "tests.plugins.with_app.apps.WithAppConfig"
