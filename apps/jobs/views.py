from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from rest_framework import serializers

from apps.core import permissions
from apps.core.downloads import artifact_response
from apps.core.filters import filtered
from apps.jobs import display, services
from apps.jobs.filters import JobFilterSet
from apps.jobs.forms import WorkerCheckForm
from apps.jobs.kinds import all_kinds, get_kind
from apps.jobs.models import Job, JobStatus
from apps.usage.forms import REFUSALS, add_refusal

LIST_PAGE = 50


def _job(request, pk, action=permissions.VIEW):
    return permissions.get_object_for(
        request.user, Job.objects.select_related("owner", "team"), action, pk=pk
    )


@login_required
def job_list(request):
    """Every job the user may see, newest first, by status and kind; live like the home page."""
    jobs = filtered(
        JobFilterSet,
        request.GET,
        Job.objects.select_related("owner", "team").visible_to(request.user),
    )
    status, kind = request.GET.get("status", ""), request.GET.get("kind", "")
    page = Paginator(jobs, LIST_PAGE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in (("status", status), ("kind", kind)) if v})
    return render(
        request,
        "jobs/job_list.html",
        {
            "page": page,
            "jobs": page.object_list,
            "status": status,
            "kind": kind,
            "statuses": JobStatus.choices,
            "kinds": sorted(k.name for k in all_kinds()),
            "page_query": query,
            # New jobs appear on the first page of the unfiltered list only.
            "prepend": page.number == 1 and not query,
        },
    )


@login_required
def job_detail(request, pk):
    job = _job(request, pk)
    params = services.shown_params(job, request.user)
    return render(
        request,
        "jobs/job_detail.html",
        {
            "job": job,
            "param_rows": display.param_rows(params),
            "params_json": display.technical(params),
            "queue_position": display.queue_position(job),
            "stale_seconds": settings.DIGITS_JOB_STALE_SECONDS,
            "kind_title": display.kind_title(job),
            "products": display.products(job, request.user),
            "artifacts": job.artifacts.all(),
            "can_change": permissions.can(request.user, permissions.CHANGE, job),
            "can_delete": permissions.can(request.user, permissions.DELETE, job),
        },
    )


@login_required
def job_log(request, pk):
    job = _job(request, pk)
    lines = job.events.filter(type="log").order_by("seq").values_list("created_at", "data")
    text = "".join(
        f"{t:%Y-%m-%d %H:%M:%S} {d.get('level', 'info'):7} {d.get('message', '')}\n"
        for t, d in lines
    )
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="job-{job.pk}.log"'
    return response


@login_required
def job_artifact(request, pk, name):
    job = _job(request, pk)
    artifact = get_object_or_404(job.artifacts, name=name)
    return artifact_response(artifact.key, artifact.name.rsplit("/", 1)[-1])


@login_required
@require_POST
def job_abort(request, pk):
    job = _job(request, pk, permissions.CHANGE)
    try:
        services.request_abort(job, by=request.user)
        messages.info(request, "Abort requested.")
    except services.JobStateError as exc:
        messages.error(request, str(exc))
    return redirect("jobs:detail", pk=pk)


@login_required
@require_POST
def job_clone(request, pk):
    job = _job(request, pk)
    try:
        new = services.clone(job, request.user)
    except (services.CloneRefused, services.JobStateError) as exc:
        messages.error(request, str(exc))
        return redirect("jobs:detail", pk=pk)
    messages.success(request, f"Cloned as job #{new.pk}.")
    return redirect("jobs:detail", pk=new.pk)


@login_required
@require_POST
def job_delete(request, pk):
    job = _job(request, pk, permissions.DELETE)
    try:
        services.delete(job)
    except services.JobStateError as exc:
        messages.error(request, str(exc))
        return redirect("jobs:detail", pk=pk)
    messages.success(request, f"Job #{pk} deleted.")
    return redirect("home")


@login_required
def worker_check_new(request):
    form = WorkerCheckForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        kind = get_kind("worker.check")
        try:
            params = kind.validate_params(form.params(), request.user)
        except serializers.ValidationError as exc:
            for field, errors in exc.detail.items():
                form.add_error(field if field in form.fields else None, [str(e) for e in errors])
        else:
            try:
                job = services.submit(
                    owner=request.user, kind=kind.name, params=params, name=data["name"],
                    team=data["team"], visibility=data["visibility"],
                    priority=data["priority"],
                )  # fmt: skip
            except REFUSALS as exc:  # over a quota or a parameter limit
                add_refusal(form, exc)
            else:
                return redirect("jobs:detail", pk=job.pk)
    return render(request, "jobs/worker_check_new.html", {"form": form})
