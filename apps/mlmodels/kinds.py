"""The models app's job kind: training a model (``model.train``), with the rules for
cloning and showing its jobs.

Classifying an image is no job (warm inference, ``apps.inference``); the ``model.infer``
jobs of earlier versions were deleted by migration ``mlmodels.0005``.

The work itself is ``apps.mlmodels.trainer``, imported in the job process only. Preprocessing (scaling, mean subtraction) and augmentation are
layers of the model, so a snapshot takes raw images and the exported model needs nothing
else. Snapshots hold weights and optimizer state: a retried job (worker lost) or a resumed
one continues from the last snapshot instead of starting over.
"""

from __future__ import annotations

import os
import re
from typing import Any

from apps.core import permissions
from apps.jobs.kinds import DomainRules, Input, JobKind, register, register_domain
from apps.mlmodels import services, snapshots
from apps.mlmodels.options import CUSTOM_SOURCES

_SNAPSHOT = re.compile(r"snapshots/epoch-(\d{4,})\.tar")


def refuse_custom_code(owner, network: dict[str, Any]) -> str | None:
    """A reason to stop a queued job whose owner lost the right to run its network."""
    if network.get("source") in CUSTOM_SOURCES and not permissions.can_run_custom_code(owner):
        return f"{owner.get_username()} may no longer run custom code or uploaded models."
    return None


def train_inputs(params: dict[str, Any]) -> list[Input]:
    """What a job training (or running) a model with ``params`` may read."""
    ds = params["dataset"]
    inputs = [
        Input(ds["prefix"], cache=(ds["id"], ds["manifest"])),
        Input(snapshots.prefix(params["model_id"])),  # resuming, retrying
    ]
    network = params.get("network", {})
    if network.get("source") == "upload" and network.get("upload_key"):
        inputs.append(Input(network["upload_key"]))
    if network.get("source") == "previous" and network.get("previous_model"):
        inputs.append(Input(snapshots.prefix(network["previous_model"])))
    return inputs


def _select_gpus(gpus: dict[str, Any]) -> None:
    """Restrict the devices TensorFlow sees; must run before it is imported."""
    mode = gpus.get("mode", "next")
    if mode == "none":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif mode == "specific":
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpus["ids"])
    elif mode == "count":
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = visible.split(",") if visible else [str(i) for i in range(gpus.get("count", 1))]
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids[: gpus.get("count", 1)])
    # "next": the worker's slot already limits what the process sees (one GPU per slot).


@register
class TrainModel(JobKind):
    name = "model.train"
    title = "Train model"
    queue = "gpu"
    params_serializer = "apps.mlmodels.params.TrainParams"

    def inputs(self, params):
        return train_inputs(params)

    def refuse_start(self, job):
        return refuse_custom_code(job.owner, job.params.get("network", {}))

    def publish_artifact(self, job, name):
        """A snapshot is published as soon as it is saved, by the model's own training job."""
        from apps.mlmodels.models import TrainedModel

        match = _SNAPSHOT.fullmatch(name)
        model_id = job.params.get("model_id")
        if match is None or not TrainedModel.objects.filter(pk=model_id, job_id=job.pk).exists():
            return None
        return snapshots.key(model_id, int(match.group(1)))

    def run(self, ctx):
        _select_gpus(ctx.params.get("gpus", {}))
        from apps.mlmodels.trainer import Trainer

        return Trainer(ctx).run()

    def on_done(self, job):
        from apps.mlmodels.models import TrainedModel

        TrainedModel.objects.filter(job=job).update(
            status=TrainedModel.Status.READY,
            result=job.result,
            best_epoch=job.result.get("best_epoch"),
        )

    def on_failed(self, job):
        from apps.jobs.models import JobStatus
        from apps.mlmodels.history import keep_history
        from apps.mlmodels.models import TrainedModel

        aborted = job.status == JobStatus.ABORTED
        status = TrainedModel.Status.ABORTED if aborted else TrainedModel.Status.ERROR
        for model in TrainedModel.objects.filter(job=job).select_related("dataset"):
            # The epochs it finished (and their snapshots) stay the model's history.
            result = keep_history(model)
            TrainedModel.objects.filter(pk=model.pk).update(
                status=status, result=result, best_epoch=result["best_epoch"]
            )


register_domain(
    "model.train",
    DomainRules(
        services.clone_training_job,
        services.training_params_shown,
        services.training_job_products,
    ),
)
