from django.apps import AppConfig


class MlModelsConfig(AppConfig):
    name = "apps.mlmodels"
    label = "mlmodels"
    verbose_name = "Models"

    def ready(self):
        from apps.jobs import sweeper

        # The job kinds, and how the job API clones and shows their jobs.
        from apps.mlmodels import kinds  # noqa: F401
        from apps.mlmodels.models import TrainedModel

        # A deleted model's snapshots that the store failed to delete go with the sweep.
        sweeper.register_area(
            "models", "models/",
            lambda ids: TrainedModel.objects.filter(pk__in=ids).values_list("pk", flat=True),
        )  # fmt: skip
