"""Creating, cloning, resuming and deleting models.

The one place that decides what creating a model needs (a dataset the owner may see, an
earlier model they may see, their own upload, the permission to run custom code), for
the new-model page, the API, the model page's clone and the job API's clone alike.

Locks: a model's job row first, then the model's row — the order in which the worker
records a job's outcome (job row, then ``TrainedModel`` by job) — so resume, delete and
a finishing job never wait on each other in a circle.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from django.db import transaction

from apps.core import permissions, uploads
from apps.datasets.models import Dataset
from apps.jobs import services as jobs
from apps.jobs.models import Job, JobPriority
from apps.mlmodels import snapshots, tasks
from apps.mlmodels.models import TrainedModel
from apps.mlmodels.options import CUSTOM_SOURCES, TASK_SOLVER_OPTIONS
from apps.usage import accounting

CUSTOM_CODE_REFUSED = (
    "Running custom network code or uploaded model files needs the permission to run "
    "custom code; ask an administrator. Choose a standard network or an earlier model."
)


class ModelError(Exception):
    """The request cannot be done as asked; the message says why (400/409).

    ``field`` names the input at fault (``dataset``, ``network``, ``image``, ``epoch``),
    ``subfield`` the part of it (``upload_key`` of ``network``) where there is one.
    """

    def __init__(self, message: str, field: str = "dataset", subfield: str | None = None):
        super().__init__(message)
        self.field, self.subfield = field, subfield

    @property
    def detail(self) -> dict[str, Any]:
        """The error as a REST validation error body: ``{field: [message]}`` or
        ``{field: {subfield: [message]}}``."""
        messages = [str(self)]
        return {self.field: {self.subfield: messages} if self.subfield else messages}


class CustomCodeRefused(ModelError):
    """The user may not run custom code (400 on create and clone, 403 on resume)."""

    def __init__(self, message: str = CUSTOM_CODE_REFUSED):
        super().__init__(message, field="network")


def _train_params(model: TrainedModel, resume: bool) -> dict[str, Any]:
    dataset = model.dataset
    return {
        "model_id": model.pk,
        "dataset": {"id": dataset.pk, "prefix": dataset.data_prefix, "manifest": dataset.manifest},
        "network": model.network,
        "solver": model.solver,
        "gpus": model.gpus,
        "resume": resume,
    }


def inference_params(model: TrainedModel) -> dict[str, Any]:
    """What a job running ``model`` (classifying, evaluating) needs to rebuild it."""
    return _train_params(model, resume=False)


def check_custom_code(user) -> None:
    """``CustomCodeRefused`` unless ``user`` may run custom code and uploaded models."""
    if not permissions.can_run_custom_code(user):
        raise CustomCodeRefused()


def check_network(network: dict, user) -> None:
    """Whether ``user`` may train ``network`` (validated by ``NetworkParams``).

    Custom code and uploaded files need the permission to run custom code; an upload must
    be one of ``user``'s own; an earlier model one ``user`` may see. Raises ``ModelError``
    (field ``network``); another user's upload or model reads as an absent one.
    """
    source = network.get("source")
    if source in CUSTOM_SOURCES:
        check_custom_code(user)
    if source == "upload":
        try:
            uploads.check_owned(network.get("upload_key"), user)
        except uploads.UnknownUpload as exc:
            raise ModelError(str(exc), field="network", subfield="upload_key") from None
    if source == "previous":
        earlier = TrainedModel.objects.filter(pk=network.get("previous_model"))
        if not earlier.visible_to(user).exists():
            raise ModelError("Unknown model.", field="network", subfield="previous_model")


def create(
    *, owner, dataset: Dataset, name: str, network: dict, solver: dict, gpus: dict | None = None,
    description: str = "", team=None, visibility: str = "private",
    batch_sizes: list[int] | None = None, base_lrs: list[float] | None = None,
    cloned_from: Job | None = None, priority: int = JobPriority.NORMAL,
) -> list[TrainedModel]:  # fmt: skip
    """Create one model per (batch size × learning rate) combination and start training each.

    ``network`` and ``solver`` are validated (``apps.mlmodels.params``); what ``owner``
    may use is checked here (``check_network``, the dataset visible to them). More than
    one combination is a sweep: the models share a ``sweep`` id.
    """
    if not permissions.can(owner, permissions.VIEW, dataset):
        raise ModelError("Unknown dataset.")
    check_network(network, owner)
    batch_sizes = batch_sizes or [solver["batch_size"]]
    base_lrs = base_lrs or [solver["base_lr"]]
    combos = list(itertools.product(batch_sizes, base_lrs))
    sweep = uuid.uuid4().hex if len(combos) > 1 else ""
    created = []
    with transaction.atomic():
        # Locked: a dataset deleted meanwhile cannot lose the models about to use it.
        dataset = Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        _check_trainable(dataset)
        check_task(dataset, network, solver)
        for batch_size, base_lr in combos:
            label = f"{name} (batch {batch_size}, lr {base_lr:g})" if sweep else name
            model = TrainedModel.objects.create(
                owner=owner, team=team, visibility=visibility, name=label, description=description,
                dataset=dataset, network=network, gpus=gpus or {}, sweep=sweep,
                solver={**solver, "batch_size": batch_size, "base_lr": base_lr},
            )  # fmt: skip
            _start(model, resume=False, cloned_from=cloned_from, priority=priority)
            created.append(model)
    return created


def train(owner, request: dict[str, Any], model_file=None) -> list[TrainedModel]:
    """Start what a ``TrainRequest`` asks (its validated data), for the page and the API alike.

    ``model_file``: the ``.keras`` file sent with the request to train from (network source
    ``upload``); it is stored here as ``owner``'s upload, and removed again if no model
    could be created.
    """
    from apps.mlmodels.params import GpuParams  # serializers: only where models are created

    network, solver = dict(request["network"]), dict(request["solver"])
    batch_sizes, base_lrs = solver.pop("batch_size"), solver.pop("base_lr")
    stored = None
    if network["source"] == "upload" and model_file is not None:
        stored = store_model_file(model_file, owner)["upload_key"]
        network["upload_key"] = stored
    try:
        return create(
            owner=owner, dataset=request["dataset"], name=request["name"],
            description=request["description"], network=network,
            solver={**solver, "batch_size": batch_sizes[0], "base_lr": base_lrs[0]},
            gpus=dict(request.get("gpus") or GpuParams().run_validation({})),
            team=request.get("team"), visibility=request["visibility"],
            batch_sizes=batch_sizes, base_lrs=base_lrs,
            priority=request.get("priority", JobPriority.NORMAL),
        )  # fmt: skip
    except ModelError:
        if stored is not None:
            uploads.delete_upload(stored)
        raise


def store_model_file(upload, user) -> dict[str, Any]:
    """Store an uploaded ``.keras`` file as ``user``'s upload, to train from (network source
    ``upload``); ``CustomCodeRefused`` without the permission to run custom code."""
    check_custom_code(user)
    return uploads.store_upload(upload, user)


def _check_trainable(dataset: Dataset | None) -> None:
    if dataset is None:
        raise ModelError("Unknown dataset.")
    if dataset.status != Dataset.Status.READY:
        raise ModelError(
            f"Dataset “{dataset.name}” is {dataset.get_status_display().lower()}, not ready."
        )
    try:
        tasks.check_trainable(tasks.task_of(dataset.manifest))
    except tasks.TaskError as exc:
        raise ModelError(str(exc)) from None
    if dataset.manifest.get("stages", {}).get("train", {}).get("count", 0) == 0:
        raise ModelError("The dataset has no training entries.")


def check_task(dataset: Dataset, network: dict, solver: dict) -> None:
    """Whether ``network`` and ``solver`` suit the task of ``dataset``: a standard network of
    that task, an earlier model trained for it, only the solver options it takes (class
    weights one per class). ``ModelError`` naming the field otherwise."""
    task = tasks.task_of(dataset.manifest)
    try:
        tasks.check_trainable(task)
    except tasks.TaskError as exc:
        raise ModelError(str(exc)) from None
    source = network.get("source")
    if source == "standard" and network.get("name") not in task.networks:
        raise ModelError(
            f"{network.get('name')} is not a {task.name} network; this dataset's task is "
            f"{task.name}: choose one of {', '.join(task.networks)}.",
            field="network", subfield="name",
        )  # fmt: skip
    if source == "previous":
        earlier = TrainedModel.objects.filter(pk=network.get("previous_model")).first()
        if earlier is not None and tasks.task_of(earlier.dataset.manifest) is not task:
            raise ModelError(
                f"Model #{earlier.pk} was trained for another task than {task.name}.",
                field="network", subfield="previous_model",
            )  # fmt: skip
    _check_solver_options(task, dataset.manifest, solver)


def _check_solver_options(task, manifest: dict, solver: dict) -> None:
    for option in TASK_SOLVER_OPTIONS:
        if solver.get(option) and option not in task.solver_options:
            raise ModelError(
                f"{option} applies to {' and '.join(t.name for t in tasks.TASKS.values() if option in t.solver_options)} "
                f"datasets only; this dataset's task is {task.name}.",
                field="solver", subfield=option,
            )  # fmt: skip
    weights, names = solver.get("class_weights") or [], manifest.get("label_names") or []
    if weights and names and len(weights) != len(names):
        raise ModelError(
            f"Give one class weight per class: {len(names)} ({', '.join(names)}), "
            f"not {len(weights)}.",
            field="solver", subfield="class_weights",
        )  # fmt: skip


def _start(
    model: TrainedModel, resume: bool, cloned_from: Job | None = None,
    priority: int = JobPriority.NORMAL,
) -> Job:  # fmt: skip
    job = jobs.submit(
        owner=model.owner, kind="model.train", name=f"Train “{model.name}”",
        team=model.team, visibility=model.visibility, params=_train_params(model, resume),
        cloned_from=cloned_from, priority=priority,
    )  # fmt: skip
    model.job = job
    model.status = TrainedModel.Status.TRAINING
    model.save(update_fields=["job", "status"])
    return job


def clone(model: TrainedModel, user, cloned_from: Job | None = None) -> TrainedModel:
    """A new model like ``model`` (which ``user`` may see), owned by ``user``, trained anew.

    Same dataset, network, solver and GPUs; a new model id, private to ``user``. Needs
    what creating it needs: ``ModelError`` if ``user`` may not see the dataset, may not
    run the network's custom code, or the uploaded model file is not theirs.
    """
    [new] = create(
        owner=user, dataset=model.dataset, name=f"{model.name} (clone)",
        description=model.description, network=model.network, solver=model.solver,
        gpus=model.gpus, cloned_from=cloned_from or model.job,
    )  # fmt: skip
    return new


def _locked(model: TrainedModel) -> TrainedModel:
    """``model`` read again with its job's row and its own row locked (in that order).

    Call inside a transaction. ``ModelError`` if it was deleted, or if another request
    gave it a new job between the two locks (the caller's request is then a conflict).
    """
    job_id = TrainedModel.objects.filter(pk=model.pk).values_list("job_id", flat=True).first()
    job = Job.objects.select_for_update().filter(pk=job_id).first() if job_id else None
    locked = TrainedModel.objects.select_for_update().filter(pk=model.pk).first()
    if locked is None:
        raise ModelError("The model was deleted meanwhile.")
    if locked.job_id != job_id:
        raise ModelError("The model changed meanwhile (another request started it); try again.")
    locked.job = job
    return locked


def _check_may_rerun(model: TrainedModel, user) -> None:
    """A model built from custom code or an uploaded file trains again only while the
    user asking and its owner (whose job it is) may still run custom code."""
    if model.network.get("source") in CUSTOM_SOURCES and not (
        permissions.can_run_custom_code(user) and permissions.can_run_custom_code(model.owner)
    ):
        raise CustomCodeRefused()


def resume(model: TrainedModel, user) -> Job:
    """Continue an aborted or failed training run from its last snapshot.

    Checked on the locked rows: of two requests racing (resume, delete, another resume),
    one wins and the others are a ``ModelError`` (409). ``CustomCodeRefused`` (403) when
    the model runs custom code that ``user`` or its owner may not run any more.
    """
    _check_may_rerun(model, user)
    with transaction.atomic():
        model = _locked(model)
        if model.job is not None and model.job.is_active:
            raise ModelError("The model is still training.")
        if not snapshots.epochs(model.pk):
            raise ModelError("The model has no snapshot to resume from; clone it to start again.")
        return _start(model, resume=True)


def delete(model: TrainedModel) -> None:
    """Delete the model, its job and its snapshots; ``JobStateError`` (409) while it trains.

    A model with an active job is refused rather than aborted: the user aborts it (the
    job stops within seconds) and deletes it then, so a click never throws away a run.
    """
    model_id = model.pk
    with transaction.atomic():
        try:
            model = _locked(model)
        except ModelError as exc:
            raise jobs.JobStateError(str(exc)) from None
        job = model.job
        if job is not None and job.is_active:
            raise jobs.JobStateError("The model is still training; abort it first.")
        model.delete()
        if job is not None:
            jobs.delete(job)
        accounting.forget_stored(snapshots.prefix(model_id))  # the quota frees up with it
        transaction.on_commit(lambda: snapshots.delete_all(model_id))


def shared(model: TrainedModel) -> None:
    """After ``model``'s sharing changed: its job and its snapshots' storage follow it (a
    team's storage quota counts the snapshots of the models shared with the team)."""
    jobs.share_like(model.job_id, model)
    accounting.share_stored(snapshots.prefix(model.pk), model.team)


# --- jobs of models, seen through the job API (registered in apps.mlmodels.kinds) ------
def _visible_model(model_id, user) -> TrainedModel:
    model = TrainedModel.objects.filter(pk=model_id).visible_to(user).first()
    if model is None:
        raise jobs.CloneRefused(
            "The model of this job is not available (deleted, or not shared with you)."
        )
    return model


def clone_training_job(job: Job, user) -> Job:
    """Cloning a training job is cloning its model: a new model of ``user``'s."""
    try:
        return clone(_visible_model(job.params.get("model_id"), user), user, cloned_from=job).job
    except ModelError as exc:
        raise jobs.CloneRefused(str(exc)) from None


def training_params_shown(params: dict[str, Any], user) -> dict[str, Any]:
    """Training params with the dataset reduced to its id where ``user`` may not see it.

    A model shared with users who may not see its dataset must not show them the
    dataset's manifest (class names and counts, shard keys) through its job.
    """
    dataset = params.get("dataset")
    if not isinstance(dataset, dict) or set(dataset) <= {"id"}:
        return params
    if _may_see_dataset(user, dataset.get("id")):
        return params
    return {**params, "dataset": {"id": dataset.get("id")}}


def _may_see_dataset(user, dataset_id) -> bool:
    """Cached on the user object, for one request: a page of jobs names a few datasets."""
    seen = user.__dict__.setdefault("_digits_visible_datasets", {})
    if dataset_id not in seen:
        rows = Dataset.objects.filter(pk=dataset_id)
        seen[dataset_id] = rows.visible_to(user).exists()
    return seen[dataset_id]


def training_job_products(job: Job, user) -> dict[str, list[tuple[str, str]]]:
    """The job page's links for a training job: its model (when ``user`` may see it) and
    the model's snapshots, which the job published as it trained."""
    from django.urls import reverse

    model = TrainedModel.objects.filter(pk=job.params.get("model_id"), job_id=job.pk).first()
    if model is None or not permissions.can(user, permissions.VIEW, model):
        return {"links": [], "downloads": []}
    download = reverse("mlmodels:download", args=[model.pk])
    return {
        "links": [(f"Model “{model.name}”", reverse("mlmodels:detail", args=[model.pk]))],
        "downloads": [
            (f"Snapshot, epoch {epoch}", f"{download}?epoch={epoch}")
            for epoch in snapshots.epochs(model.pk)
        ],
    }
