"""The datasets app's job kinds: building a dataset (``dataset.build``).

The work itself is ``apps.datasets.building``; cloning a build job is the datasets
service's (``apps.datasets.services.clone_build``).
"""

from __future__ import annotations

from django.db import transaction

from apps.datasets import services
from apps.jobs.kinds import DomainRules, Input, JobKind, register, register_domain


@register
class BuildDataset(JobKind):
    name = "dataset.build"
    title = "Build dataset"
    params_serializer = "apps.datasets.requests.BuildParams"

    def inputs(self, params):
        """The uploads named in the options, and the object-store prefixes open to imports."""
        from django.conf import settings

        from apps.core.uploads import upload_refs

        uploads = [Input(ref["upload_key"]) for ref in upload_refs(params.get("options", {}))]
        imports = [
            Input(p.rstrip("/") + "/") for p in settings.DIGITS_IMPORT_PREFIXES if p.strip("/")
        ]
        return [*uploads, *imports]

    def run(self, ctx):
        from apps.datasets import building  # numpy, Pillow, the pool: the job process only

        return building.build(ctx)

    def on_done(self, job):
        from apps.datasets.models import Dataset

        Dataset.objects.filter(job=job).update(status=Dataset.Status.READY, manifest=job.result)
        self._discard_uploads(job)

    def on_failed(self, job):
        from apps.datasets.models import Dataset
        from apps.jobs.models import JobStatus

        aborted = job.status == JobStatus.ABORTED
        status = Dataset.Status.ABORTED if aborted else Dataset.Status.ERROR
        Dataset.objects.filter(job=job).update(status=status)
        self._discard_uploads(job)

    def _discard_uploads(self, job):
        options = job.params.get("options", {})
        transaction.on_commit(lambda: services.discard_uploads(options))


register_domain(
    "dataset.build", DomainRules(services.clone_build, products=services.build_job_products)
)
