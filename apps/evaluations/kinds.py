"""The evaluations app's job kind: ``model.evaluate`` (classify many inputs with a model).

The work is ``apps.evaluations.evaluator``, imported in the job process only. The job
writes one artifact, ``predictions.npy``, below its staging prefix; the worker publishes it
with the job when it succeeds, so an evaluation that failed or was aborted has none.
"""

from __future__ import annotations

from apps.evaluations import services
from apps.evaluations.models import Evaluation
from apps.jobs.kinds import DomainRules, Input, JobKind, register, register_domain
from apps.mlmodels import snapshots
from apps.mlmodels.kinds import refuse_custom_code, train_inputs


@register
class EvaluateModel(JobKind):
    name = "model.evaluate"
    title = "Evaluate model"
    queue = "gpu"
    params_serializer = "apps.evaluations.requests.EvaluateParams"

    def inputs(self, params):
        train = params["train_params"]
        ds = train["dataset"]
        found = [
            Input(snapshots.key(params["model_id"], params["epoch"])),
            Input(ds["prefix"], cache=(ds["id"], ds["manifest"])),
            *train_inputs(train)[2:],  # the network's source, if any
        ]
        evaluated = params.get("dataset")
        if evaluated and evaluated["id"] != ds["id"]:
            found.append(Input(evaluated["prefix"], cache=(evaluated["id"], evaluated["manifest"])))
        found += [Input(params[k]) for k in ("archive_key", "list_key") if params.get(k)]
        return found

    def refuse_start(self, job):
        return refuse_custom_code(job.owner, job.params["train_params"].get("network", {}))

    def run(self, ctx):
        from apps.evaluations import evaluator  # TensorFlow: the job process only

        return evaluator.evaluate(ctx)

    def on_done(self, job):
        from apps.evaluations.predictions import NAME

        Evaluation.objects.filter(job=job).update(
            status=Evaluation.Status.DONE,
            summary=job.result.get("summary", {}),
            predictions_key=job.artifact_prefix + NAME,
        )

    def on_failed(self, job):
        from apps.jobs.models import JobStatus

        aborted = job.status == JobStatus.ABORTED
        status = Evaluation.Status.ABORTED if aborted else Evaluation.Status.ERROR
        Evaluation.objects.filter(job=job).update(status=status)

    def on_delete(self, job):
        """An evaluation is its job's product: deleting the job (and so its predictions)
        through the job API deletes the evaluation too."""
        Evaluation.objects.filter(job=job).delete()


register_domain("model.evaluate", DomainRules(services.clone_job, services.params_shown))
