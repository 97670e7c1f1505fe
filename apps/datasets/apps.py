from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"
    verbose_name = "Datasets"

    def ready(self):
        # The build job kind, and how the job API clones its jobs.
        from apps.datasets import jobs, services  # noqa: F401
