from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"
    verbose_name = "Datasets"

    def ready(self):
        from apps.datasets import kinds  # noqa: F401  registers the build kind and its rules
