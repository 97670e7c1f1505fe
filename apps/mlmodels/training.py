"""The training job: a Keras model trained on a dataset's shards, in the job process.

Preprocessing (scaling, mean subtraction) and augmentation are layers of the
model, so a snapshot takes raw images and the exported model needs nothing
else. Snapshots hold weights and optimizer state: a retried job (worker lost)
or a resumed one continues from the last snapshot instead of starting over.
"""

from __future__ import annotations

import os
from typing import Any

from apps.jobs.kinds import JobKind, register
from apps.mlmodels.params import TrainParams


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
    params_serializer = TrainParams

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
        from apps.mlmodels.models import TrainedModel

        aborted = job.status == JobStatus.ABORTED
        status = TrainedModel.Status.ABORTED if aborted else TrainedModel.Status.ERROR
        TrainedModel.objects.filter(job=job).update(status=status)
