import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core import permissions
from apps.core.plugins import STAGES
from apps.core.plugins.catalog import data_ingestion_types, get_data_ingestion
from apps.datasets import services, shards
from apps.datasets.forms import DatasetForm
from apps.datasets.models import Dataset
from apps.jobs.services import JobStateError

GALLERY_PAGE = 24


def _dataset(request, pk, action=permissions.VIEW):
    return permissions.get_object_for(
        request.user, Dataset.objects.select_related("owner", "team", "job"), action, pk=pk
    )


def _ingestion_class(type_id):
    try:
        return get_data_ingestion(type_id)
    except LookupError:
        raise Http404(f"No installed plugin provides the dataset type {type_id!r}.") from None


@login_required
def dataset_new_menu(request):
    categories: dict[str, list] = {}
    for type_id, cls in sorted(data_ingestion_types().items(), key=lambda t: t[1].get_title()):
        categories.setdefault(cls.get_category(), []).append((type_id, cls.get_title()))
    return render(request, "datasets/new_menu.html", {"categories": sorted(categories.items())})


@login_required
def dataset_new(request, type_id):
    cls = _ingestion_class(type_id)
    data = request.POST if request.method == "POST" else None
    form = DatasetForm(data, user=request.user, prefix="dataset")
    type_form = cls.get_dataset_form()(data, request.FILES or None, prefix="data")
    if data is not None and form.is_valid() & type_form.is_valid():
        d = form.cleaned_data
        dataset = services.create(
            owner=request.user, type_id=type_id, options=type_form.cleaned_data, name=d["name"],
            description=d["description"], team=d["team"], visibility=d["visibility"],
            processes=d["processes"], max_error_percent=d["max_error_percent"],
        )  # fmt: skip
        return redirect("datasets:detail", pk=dataset.pk)
    type_template, type_context = cls.get_dataset_template(type_form)
    return render(
        request,
        "datasets/new.html",
        {
            "title": cls.get_title(),
            "form": form,
            "type_template": type_template,
            "type_context": type_context,
        },
    )


@login_required
def dataset_detail(request, pk):
    dataset = _dataset(request, pk)
    manifest = dataset.manifest
    stages = [(s, dataset.stage_count(s)) for s in STAGES]
    return render(
        request,
        "datasets/detail.html",
        {
            "dataset": dataset,
            "job": dataset.job,
            "stages": stages,
            "manifest": manifest,
            "type_title": _type_title(dataset.type),
            "can_delete": permissions.can(request.user, permissions.DELETE, dataset),
        },
    )


def _type_title(type_id):
    try:
        return get_data_ingestion(type_id).get_title()
    except LookupError:
        return f"{type_id} (plugin not installed)"


@login_required
def dataset_explore(request, pk):
    dataset = _dataset(request, pk)
    if dataset.status != Dataset.Status.READY:
        raise Http404("The dataset is not ready.")
    stage = request.GET.get("stage", "train")
    if stage not in STAGES:
        raise Http404("Unknown stage.")
    page = Paginator(range(dataset.stage_count(stage)), GALLERY_PAGE).get_page(
        request.GET.get("page")
    )
    names = dataset.manifest.get("label_names")
    return render(
        request,
        "datasets/explore.html",
        {
            "dataset": dataset,
            "stage": stage,
            "stages": [(s, dataset.stage_count(s)) for s in STAGES],
            "page": page,
            "label_names": names,
        },
    )


@login_required
def dataset_entry_image(request, pk, stage, index):
    dataset = _dataset(request, pk)
    if dataset.status != Dataset.Status.READY:
        raise Http404("The dataset is not ready.")
    try:
        features, label = shards.read_entry(dataset, stage, index)
    except IndexError:
        raise Http404(f"{stage} has no entry {index}.") from None
    ingestion = _ingestion_class(dataset.type)(**dataset.options)
    image = ingestion.render_entry(features, label)
    out = io.BytesIO()
    image.save(out, format="PNG")
    response = HttpResponse(out.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_POST
def dataset_delete(request, pk):
    dataset = _dataset(request, pk, permissions.DELETE)
    try:
        services.delete(dataset)
    except (services.DatasetInUse, JobStateError) as exc:
        messages.error(request, str(exc))
        return redirect("datasets:detail", pk=pk)
    messages.success(request, f"Dataset “{dataset.name}” deleted.")
    return redirect("home")
