from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "apps.usage"
    label = "usage"
    verbose_name = "Quotas, usage and audit"

    def ready(self):
        from apps.usage import audit, signals

        audit.connect()
        signals.connect()
