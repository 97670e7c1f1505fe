"""Job kinds: what a job does, registered by the apps and plugins that add them.

The engine (claiming, child processes, events, abort, retries) knows nothing
about datasets or training; a kind supplies the parameters it accepts, the work
done in the job process, and what happens in the database when it finishes.

Every app declares its kinds in its own ``kinds.py`` (``apps.datasets.kinds``,
``apps.mlmodels.kinds``; this module holds the engine's own, ``worker.check``),
imported by its ``AppConfig.ready``; plugins' kinds come from the hook
``digits_job_kinds`` (``register_plugin_kinds``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework.exceptions import ValidationError  # light: not rest_framework.serializers

if TYPE_CHECKING:
    from rest_framework.serializers import Serializer

    from apps.jobs.context import JobContext
    from apps.jobs.models import Job

QUEUES = ("default", "gpu")


@dataclass(frozen=True)
class Input:
    """Artifacts a job may read: one key, or every key below a folder (ending in ``/``).

    ``cache`` marks a built dataset's files as ``(dataset id, manifest)``: they are
    immutable, so the worker keeps one copy per node for every job that reads them.
    """

    prefix: str
    cache: tuple[int, dict[str, Any]] | None = None


class JobKind:
    """Base class of a job kind. Subclass it and decorate with ``@register``.

    ``run`` executes in the job's own OS process (never in the web or worker
    process); the ``on_*`` hooks execute in the worker, inside the database
    transaction that records the job's outcome.
    """

    #: Unique, stable identifier stored in ``Job.kind`` (e.g. ``"dataset.build"``).
    name: ClassVar[str]
    #: Human-readable title for pages and the API.
    title: ClassVar[str]
    #: ``"default"`` (CPU nodes) or ``"gpu"``.
    queue: ClassVar[str] = "default"
    #: Validates the ``params`` a user submits (a serializer class, or its dotted path: then
    #: Django REST framework is imported only where jobs are submitted); ``None`` accepts
    #: no parameters.
    params_serializer: ClassVar[type[Serializer] | str | None] = None
    #: Whether a user may start the kind directly through the generic job API.
    user_creatable: ClassVar[bool] = False

    def validate_params(self, params: dict[str, Any], user) -> dict[str, Any]:
        """Clean ``params`` or raise ``serializers.ValidationError`` naming the field."""
        if self.params_serializer is None:
            if params:
                raise ValidationError({"params": "This job kind takes no parameters."})
            return {}
        serializer_class = self.params_serializer
        if isinstance(serializer_class, str):
            serializer_class = import_string(serializer_class)
        serializer = serializer_class(data=params, context={"user": user})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def queue_for(self, params: dict[str, Any]) -> str:
        """The queue a job with these (validated) parameters goes to."""
        return self.queue

    def inputs(self, params: dict[str, Any]) -> list[Input]:
        """What the job process may read from the store besides its own staging folder.

        Runs in the worker, on the job's stored (validated) parameters; the job process
        can read nothing else (``apps.jobs.artifacts``).
        """
        return []

    def refuse_start(self, job: Job) -> str | None:
        """Why the claimed ``job`` must not start after all (the job fails with it), or None.

        Runs in the worker just before the job process starts: rights checked when the
        job was submitted may have been taken away while it waited in the queue.
        """
        return None

    def publish_artifact(self, job: Job, name: str) -> str | None:
        """Where the staged artifact ``name`` goes when the running job publishes it.

        Runs in the worker. None (the default) refuses: outputs are published with the
        job when it succeeds. Training publishes each snapshot as soon as it is saved.
        """
        return None

    def run(self, ctx: JobContext) -> dict[str, Any] | None:
        """Do the work in the job process; return a JSON-able summary stored in ``Job.result``."""
        raise NotImplementedError

    def on_done(self, job: Job) -> None:
        """Record the outcome (e.g. mark a dataset ready). Artifacts are already published."""

    def on_failed(self, job: Job) -> None:
        """Undo or mark entities that depended on the job (error or abort)."""

    def on_delete(self, job: Job) -> None:
        """Clean up anything outside the job's artifact prefix."""


_registry: dict[str, JobKind] = {}


def register(cls: type[JobKind]) -> type[JobKind]:
    """Class decorator adding a kind to the registry; the name must be new."""
    if cls.queue not in QUEUES:
        raise ValueError(f"{cls.__name__}.queue must be one of {QUEUES}")
    existing = _registry.get(cls.name)
    if existing is not None and type(existing) is not cls:
        raise ValueError(f"job kind {cls.name!r} is already registered by {type(existing)!r}")
    _registry[cls.name] = cls()
    return cls


def get_kind(name: str) -> JobKind:
    try:
        return _registry[name]
    except KeyError:
        raise LookupError(f"unknown job kind {name!r}") from None


def all_kinds() -> list[JobKind]:
    return sorted(_registry.values(), key=lambda kind: kind.name)


def hooks_for(name: str) -> JobKind:
    """The kind's hooks, or no-op ones when its plugin is no longer installed.

    A job of a removed kind must still be finishable and deletable.
    """
    return _registry.get(name) or JobKind()


@dataclass(frozen=True)
class DomainRules:
    """How jobs that build a domain object (a model, a dataset) are cloned and shown.

    The app owning the object registers them for its kinds (``register_domain``), so the
    rules for creating the object — and who may see what it was made from — live in that
    app's services, whether the request comes through the object's page or the job API.

    ``clone(job, user) -> Job``: a new job building a new object owned by ``user``, with
    the rights creating one needs; raises ``apps.jobs.services.CloneRefused``.
    ``shown_params(params, user) -> dict``: the job's params without what ``user`` may
    not see (``params`` is the stored dict; return a new one).
    ``products(job, user) -> dict``: links to the job's object and downloads (below).
    """

    clone: Callable[[Job, Any], Job]
    shown_params: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
    #: ``products(job, user) -> {"links": [(label, url)], "downloads": [(name, url)]}``:
    #: what the job page links to (the model or dataset it builds, as far as ``user`` may
    #: see it) and the files it produced outside the job's own artifacts (snapshots).
    products: Callable[[Job, Any], dict[str, list[tuple[str, str]]]] | None = None


_domains: dict[str, DomainRules] = {}


def register_domain(kind: str, rules: DomainRules) -> None:
    _domains[kind] = rules


def domain_rules(kind: str) -> DomainRules | None:
    return _domains.get(kind)


def register_plugin_kinds() -> None:
    """Register the kinds every loaded plugin adds (hook ``digits_job_kinds``)."""
    for _, kind in settings.PLUGINS.collect("digits_job_kinds", JobKind):
        register(kind)


# --- the engine's own kind ----------------------------------------------------------------------
@register
class WorkerCheck(JobKind):
    """Whether a node can run jobs, and how fast (``apps.jobs.diagnostics``)."""

    name = "worker.check"
    title = "Worker check"
    params_serializer = "apps.jobs.params.WorkerCheckParams"
    user_creatable = True

    def queue_for(self, params):
        return params.get("queue", "default")

    def run(self, ctx):
        from apps.jobs import diagnostics  # numpy and psutil: the job process only

        return diagnostics.check(ctx)
