from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from apps.core import permissions
from apps.core.filters import filtered
from apps.core.middleware import STORE_UNAVAILABLE_MESSAGE
from apps.core.plugins import STAGES
from apps.core.plugins.catalog import data_ingestion_types, get_data_ingestion
from apps.core.storage import StoreUnavailable
from apps.datasets import files, queries, services
from apps.datasets.filters import DatasetFilterSet
from apps.datasets.forms import DatasetForm
from apps.datasets.models import Dataset
from apps.jobs.services import JobStateError
from apps.usage.forms import REFUSALS, add_refusal

GALLERY_PAGE = 24
LIST_PAGE = 50
SAMPLES_PER_CLASS = 6


def _dataset(request, pk, action=permissions.VIEW):
    return permissions.get_object_for(
        request.user, Dataset.objects.select_related("owner", "team", "job"), action, pk=pk
    )


def _ready_dataset(request, pk):
    """A dataset the user may see whose shards are published (404 while building or failed)."""
    dataset = _dataset(request, pk)
    if dataset.status != Dataset.Status.READY:
        raise Http404("The dataset is not ready.")
    return dataset


def _ingestion_class(type_id):
    try:
        return get_data_ingestion(type_id)
    except LookupError:
        raise Http404(f"No installed plugin provides the dataset type {type_id!r}.") from None


#: Entries with masks show three pictures: ``(query of the entry's PNG, title)``.
MASK_PARTS = [("?part=image", "image"), ("?part=mask", "mask"), ("", "overlay")]


@login_required
def dataset_list(request):
    """Every dataset the user may see, newest first, by type and status."""
    datasets = filtered(
        DatasetFilterSet,
        request.GET,
        Dataset.objects.select_related("owner").visible_to(request.user),
    )
    type_id, status = request.GET.get("type", ""), request.GET.get("status", "")
    page = Paginator(datasets, LIST_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "dataset": d,
            "type_title": _type_title(d.type),
            "counts": [d.stage_count(stage) for stage in STAGES],
            "classes": len(d.manifest.get("label_names") or []) or None,
        }
        for d in page.object_list
    ]
    return render(
        request,
        "datasets/list.html",
        {
            "page": page,
            "rows": rows,
            "type": type_id,
            "status": status,
            "types": sorted(
                (type_id, cls.get_title()) for type_id, cls in data_ingestion_types().items()
            ),
            "statuses": Dataset.Status.choices,
            "page_query": urlencode(
                {k: v for k, v in (("type", type_id), ("status", status)) if v}
            ),
        },
    )


@login_required
def dataset_new_menu(request):
    categories: dict[str, list] = {}
    for type_id, cls in sorted(data_ingestion_types().items(), key=lambda t: t[1].get_title()):
        categories.setdefault(cls.get_category(), []).append((type_id, cls.get_title()))
    return render(request, "datasets/new_menu.html", {"categories": sorted(categories.items())})


@login_required
def dataset_new(request, type_id):
    """The dataset form and its type's form, checked as one ``BuildRequest``."""
    cls = _ingestion_class(type_id)
    data = request.POST if request.method == "POST" else None
    form = DatasetForm(data, request.FILES or None, user=request.user, type_id=type_id)
    status = 200
    if data is not None and form.is_valid():
        try:
            dataset = services.build(request.user, form.cleaned_data["build_request"])
        except REFUSALS as exc:  # over a quota or a parameter limit
            add_refusal(form, exc)
        except StoreUnavailable:
            form.add_error(None, STORE_UNAVAILABLE_MESSAGE)
            status = 503
        else:
            return redirect("datasets:detail", pk=dataset.pk)
    # The plugin's template gets exactly the context its get_dataset_template returned.
    type_template, type_context = cls.get_dataset_template(form.type_form)
    type_html = render_to_string(type_template, type_context, request=request)
    return render(
        request,
        "datasets/new.html",
        {"title": cls.get_title(), "form": form, "type_html": type_html},
        status=status,
    )


@login_required
def dataset_detail(request, pk):
    dataset = _dataset(request, pk)
    manifest = dataset.manifest
    stages = [(s, dataset.stage_count(s)) for s in STAGES]
    ready = dataset.status == Dataset.Status.READY
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
            "class_distribution": queries.class_distribution(dataset) if ready else None,
            "samples": _samples(dataset) if ready else None,
            "downloads": files.downloads(dataset) if ready else [],
        },
    )


def _samples(dataset):
    """``{"stage", "rows": [(class index or None, caption, [entry index, ...]), ...]}``.

    A few entries of each class, from the train stage when it has entries; datasets
    without class labels (masks) show the stage's first entries.
    """
    stage = next((s for s in STAGES if dataset.stage_count(s)), None)
    if stage is None:
        return None
    if not queries.has_class_labels(dataset):
        count = min(dataset.stage_count(stage), SAMPLES_PER_CLASS * 2)
        return {"stage": stage, "rows": [(None, "First entries", list(range(count)))]}
    per_class = queries.class_samples(dataset, stage, SAMPLES_PER_CLASS)
    counts = queries.class_counts(dataset, stage)
    rows = [
        (label, f"{queries.class_name(dataset, label)} ({counts.get(label, 0)})", indices)
        for label, indices in sorted(per_class.items())
    ]
    return {"stage": stage, "rows": rows}


def _type_title(type_id):
    try:
        return get_data_ingestion(type_id).get_title()
    except LookupError:
        return f"{type_id} (plugin not installed)"


@login_required
def dataset_explore(request, pk):
    dataset = _ready_dataset(request, pk)
    by_class = queries.has_class_labels(dataset)
    try:
        # A class asked of a dataset of masks is left out, not refused: the page has no filter.
        stage, label = queries.entry_filter(
            dataset,
            request.GET.get("stage", "train"),
            request.GET.get("label", "") if by_class else "",
        )
    except queries.EntryQueryError as exc:
        raise Http404(str(exc)) from None
    indices = queries.entry_indices(dataset, stage, label)
    page = Paginator(indices, GALLERY_PAGE).get_page(request.GET.get("page"))
    gallery = queries.entry_rows(dataset, stage, page.object_list)
    query = {"stage": stage, **({"label": label} if label is not None else {})}
    return render(
        request,
        "datasets/explore.html",
        {
            "dataset": dataset,
            "stage": stage,
            "stages": [(s, dataset.stage_count(s)) for s in STAGES],
            "page": page,
            "gallery": gallery,
            "label": label,
            "classes": _class_choices(dataset, stage) if by_class else None,
            "masks": dataset.manifest.get("label", {}).get("kind") == "mask",
            "mask_parts": MASK_PARTS,
            "label_query": f"&label={label}" if label is not None else "",
            "page_query": urlencode(query),
        },
    )


def _class_choices(dataset, stage):
    """``(class index, name, entries in stage)`` for the explore page's class filter."""
    counts = queries.class_counts(dataset, stage)
    return [(i, queries.class_name(dataset, i), counts.get(i, 0)) for i in queries.classes(dataset)]


@login_required
def dataset_entry_image(request, pk, stage, index):
    part = request.GET.get("part") or None
    return files.entry_response(_ready_dataset(request, pk), stage, index, part)


@login_required
def dataset_mean_image(request, pk):
    """The mean image of the train stage, shown inline on the dataset page."""
    return files.mean_response(_ready_dataset(request, pk))


@login_required
def dataset_file(request, pk, name):
    """One of the dataset's own files (``files.DOWNLOADS``), as a download."""
    return files.file_response(_ready_dataset(request, pk), name)


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
