from django.apps import AppConfig


class MlModelsConfig(AppConfig):
    name = "apps.mlmodels"
    label = "mlmodels"
    verbose_name = "Models"

    def ready(self):
        from apps.mlmodels import inference, training  # noqa: F401  register the job kinds
