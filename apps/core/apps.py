from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self):
        from apps.core import checks  # noqa: F401  registers the system checks
        from apps.core.plugins import catalog

        # Collect now, so a plugin whose hooks fail is reported at start-up.
        catalog.data_ingestion_types()
        catalog.visualization_types()
