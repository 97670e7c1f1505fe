from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_delete, post_save


class InferenceConfig(AppConfig):
    name = "apps.inference"
    label = "inference"
    verbose_name = "Inference"

    def ready(self):
        from apps.mlmodels.models import TrainedModel

        post_delete.connect(_forget, sender=TrainedModel, dispatch_uid="inference.forget.delete")
        post_save.connect(_forget_retrained, sender=TrainedModel, dispatch_uid="inference.forget")


def _forget(sender, instance, **kwargs):
    """A deleted model leaves the inference server's memory once the deletion commits (other
    servers' sweeps follow within ``DIGITS_INFERENCE_SWEEP_SECONDS``)."""
    from apps.inference import service

    model_id = instance.pk
    transaction.on_commit(lambda: service.evict(model_id))


def _forget_retrained(sender, instance, update_fields=None, **kwargs):
    # A new training run (resume) gives the model a new job: its snapshots may change.
    if update_fields and "job" in update_fields:
        _forget(sender, instance)
