from django.apps import AppConfig


class MlModelsConfig(AppConfig):
    name = "apps.mlmodels"
    label = "mlmodels"
    verbose_name = "Models"

    def ready(self):
        # The job kinds, and how the job API clones and shows their jobs.
        from apps.mlmodels import kinds  # noqa: F401
