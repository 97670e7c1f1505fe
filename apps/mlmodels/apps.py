from django.apps import AppConfig


class MlModelsConfig(AppConfig):
    name = "apps.mlmodels"
    label = "mlmodels"
    verbose_name = "Models"
