from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self):
        from apps.jobs import kinds, signals

        kinds.register_plugin_kinds()
        signals.connect()
