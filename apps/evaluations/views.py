from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core import permissions
from apps.core.filters import filtered
from apps.datasets.models import Dataset
from apps.evaluations import files, services
from apps.evaluations.filters import EntryFilterSet, EntryRows, EvaluationFilterSet
from apps.evaluations.models import Evaluation
from apps.evaluations.requests import STAGES, EvaluateRequest
from apps.jobs.services import JobStateError
from apps.mlmodels.models import TrainedModel

#: Entries one page of the entries gallery shows.
ENTRIES_PAGE = 60
TOP_PER_CLASS = 9


def _evaluation(request, pk, action=permissions.VIEW) -> Evaluation:
    queryset = Evaluation.objects.select_related("owner", "model", "dataset", "job")
    return permissions.get_object_for(
        request.user, queryset.visible_to(request.user), action, pk=pk
    )


def _rows_or_404(evaluation):
    try:
        return services.rows(evaluation)
    except services.NotReady as exc:
        raise Http404(str(exc)) from None


@login_required
def evaluation_list(request):
    evaluations = filtered(
        EvaluationFilterSet,
        request.GET,
        Evaluation.objects.select_related("owner", "model", "dataset").visible_to(request.user),
    )
    return render(request, "evaluations/list.html", {"evaluations": evaluations[:500]})


@login_required
def evaluation_new(request):
    """Classify many: a dataset stage, an archive or a list, with a model's snapshot."""
    model = TrainedModel.objects.filter(
        pk=_int(request.GET.get("model") or request.POST.get("model"))
    )
    model = model.visible_to(request.user).first()
    errors = {}
    if request.method == "POST":
        data = {**request.POST.dict(), **request.FILES.dict()}
        for empty in [k for k, v in data.items() if v in ("", None)]:
            del data[empty]  # an empty field of the form is a field not given
        params = EvaluateRequest(data=data, context={"user": request.user})
        if params.is_valid():
            try:
                evaluation = services.evaluate(request.user, params.validated_data)
            except services.EvaluationError as exc:
                errors = exc.detail
            else:
                return redirect("evaluations:detail", pk=evaluation.pk)
        else:
            errors = params.errors
    return render(
        request,
        "evaluations/new.html",
        {
            "model": model,
            "errors": {k: v if isinstance(v, list) else [v] for k, v in errors.items()},
            "values": request.POST,
            "stages": STAGES,
            "datasets": Dataset.objects.filter(status="ready").visible_to(request.user),
            "models": TrainedModel.objects.visible_to(request.user)[:200],
        },
    )


def _int(value) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


@login_required
def evaluation_detail(request, pk):
    evaluation = _evaluation(request, pk)
    summary = evaluation.summary
    return render(
        request,
        "evaluations/detail.html",
        {
            "evaluation": evaluation,
            "job": evaluation.job,
            "summary": summary,
            "matrix": _matrix(summary),
            "can_change": permissions.can(request.user, permissions.CHANGE, evaluation),
            "can_delete": permissions.can(request.user, permissions.DELETE, evaluation),
        },
    )


def _matrix(summary):
    """``[(class, [(predicted class, count, share of the row)])]`` for the confusion table."""
    classes = summary.get("classes") or []
    rows = []
    for cls, counts in zip(classes, summary.get("confusion") or [], strict=False):
        total = sum(counts) or 1
        rows.append((cls, [(classes[j], n, n / total) for j, n in enumerate(counts)]))
    return rows


@login_required
def evaluation_entries(request, pk):
    """The entries, filtered by true and predicted class (a confusion matrix cell)."""
    evaluation = _evaluation(request, pk)
    table = _rows_or_404(evaluation)
    classes = table["probs"].shape[1]
    filters = EntryFilterSet(request.GET, EntryRows(table), classes=classes)
    if not filters.is_valid():
        raise Http404("; ".join(f"{k}: {' '.join(v)}" for k, v in filters.errors.items()))
    page = Paginator(filters.qs, ENTRIES_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "evaluations/entries.html",
        {
            "evaluation": evaluation,
            "page": page,
            "entries": services.entry_rows(evaluation, page.object_list),
            "classes": list(enumerate(evaluation.class_names)),
            "filters": filters.form.cleaned_data,
            "count": len(filters.qs),
            "page_query": query.urlencode(),
        },
    )


@login_required
def evaluation_top(request, pk):
    """DIGITS' "top N images per class"."""
    evaluation = _evaluation(request, pk)
    _rows_or_404(evaluation)
    per_class = services.top_per_class(evaluation, TOP_PER_CLASS)
    for row in per_class:
        row["entries"] = services.entry_rows(evaluation, row.pop("positions"))
    return render(
        request, "evaluations/top.html", {"evaluation": evaluation, "per_class": per_class}
    )


@login_required
def evaluation_csv(request, pk):
    evaluation = _evaluation(request, pk)
    _rows_or_404(evaluation)
    return files.csv_response(evaluation)


@login_required
@require_POST
def evaluation_delete(request, pk):
    evaluation = _evaluation(request, pk, permissions.DELETE)
    model_id = evaluation.model_id
    try:
        services.delete(evaluation)
    except JobStateError as exc:
        messages.error(request, str(exc))
        return redirect("evaluations:detail", pk=pk)
    messages.success(request, f"Evaluation “{evaluation.name}” deleted.")
    return redirect("mlmodels:detail", pk=model_id)


@login_required
def evaluation_versus(request):
    """Entries evaluation ``a`` classified right and evaluation ``b`` wrong."""
    a = _evaluation(request, _int(request.GET.get("a")))
    b = _evaluation(request, _int(request.GET.get("b")))
    _rows_or_404(a), _rows_or_404(b)
    try:
        positions = services.versus(a, b)
    except services.EvaluationError as exc:
        raise Http404(str(exc)) from None
    page = Paginator(positions.tolist(), ENTRIES_PAGE).get_page(request.GET.get("page"))
    right_in_b = services.entry_rows(b, page.object_list)
    return render(
        request,
        "evaluations/versus.html",
        {
            "a": a,
            "b": b,
            "page": page,
            "entries": zip(services.entry_rows(a, page.object_list), right_in_b, strict=True),
            "count": len(positions),
            "page_query": f"a={a.pk}&b={b.pk}",
        },
    )
