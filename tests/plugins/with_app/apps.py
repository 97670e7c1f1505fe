from django.apps import AppConfig


class WithAppConfig(AppConfig):
    name = "tests.plugins.with_app"
    label = "with_app"
    verbose_name = "Test plugin with an app"
