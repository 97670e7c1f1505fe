import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core import permissions
from apps.core.filters import filtered
from apps.core.plugins import catalog
from apps.datasets.models import Dataset
from apps.inference.classify import MAX_TOP_N
from apps.inference.classify import classify as classify_one
from apps.inference.service import InferenceError
from apps.jobs.services import JobStateError
from apps.mlmodels import (
    compare,
    export,
    history,
    services,
    single_inference,
    snapshots,
    tasks,
)
from apps.mlmodels.filters import TrainedModelFilterSet
from apps.mlmodels.forms import ModelForm
from apps.mlmodels.models import TrainedModel
from apps.usage.forms import REFUSALS, add_refusal


def _model(request, pk, action=permissions.VIEW):
    return permissions.get_object_for(
        request.user,
        TrainedModel.objects.select_related("owner", "team", "job", "dataset"),
        action,
        pk=pk,
    )


#: Models the list page shows at most (the newest, before sorting).
LIST_LIMIT = 500


@login_required
def model_list(request):
    """Every model the user may see, with its best epoch's figures: sort, filter, pick some
    to compare."""
    models = filtered(
        TrainedModelFilterSet,
        request.GET,
        TrainedModel.objects.select_related("owner", "dataset").visible_to(request.user),
    )
    # Valid once filtered: a dataset is its id.
    dataset = int(request.GET["dataset"]) if request.GET.get("dataset") else None
    sweep, status = request.GET.get("sweep", ""), request.GET.get("status", "")
    sort = request.GET.get("sort", "created")
    if sort not in compare.SORTS:
        sort = "created"
    rows = compare.ranked(models[:LIST_LIMIT], sort)
    best = compare.best_of(rows)
    score_columns = compare.score_columns(rows)
    return render(
        request,
        "mlmodels/list.html",
        {
            "rows": rows,
            "best": best["model"].pk if best else None,
            "score_columns": score_columns,
            "sort": sort,
            "sorts": [(key, label) for key, (label, _, _) in compare.SORTS.items()],
            "datasets": Dataset.objects.all().visible_to(request.user),
            "dataset": dataset,
            "sweep": sweep,
            "status": status,
            "statuses": TrainedModel.Status.choices,
            "limit": LIST_LIMIT,
            "min_compared": compare.MIN_COMPARED,
            "max_compared": compare.MAX_COMPARED,
        },
    )


@login_required
def model_compare(request):
    """The chosen models side by side: best epochs, differing options, curves per epoch."""
    try:
        ids = list(dict.fromkeys(int(v) for v in request.GET.getlist("id")))
    except ValueError:
        raise Http404("Model ids are numbers.") from None
    if not compare.MIN_COMPARED <= len(ids) <= compare.MAX_COMPARED:
        messages.error(
            request,
            f"Choose between {compare.MIN_COMPARED} and {compare.MAX_COMPARED} models to compare.",
        )
        return redirect("mlmodels:list")
    found = {
        m.pk: m
        for m in TrainedModel.objects.select_related("owner", "dataset")
        .visible_to(request.user)
        .filter(pk__in=ids)
    }
    if len(found) != len(ids):  # another user's private model is as unknown as a missing one
        raise Http404("No such model.")
    models = [found[pk] for pk in ids]
    rows = [compare.summary(m) for m in models]
    best = compare.best_of(rows)
    differing = compare.differing_solver_keys(rows)
    score_columns = compare.score_columns(rows)
    for row in rows:
        row["differing"] = [row["solver"][key] for key in differing]
    return render(
        request,
        "mlmodels/compare.html",
        {
            "rows": rows,
            "best": best["model"].pk if best else None,
            "differing": differing,
            "score_columns": score_columns,
            "same_dataset": len({m.dataset_id for m in models}) == 1,
            "curves": compare.curves(models),
            "parallel": compare.parallel(rows, differing),
        },
    )


@login_required
def model_new(request):
    initial = {"dataset": request.GET.get("dataset")} if request.GET.get("dataset") else None
    form = ModelForm(
        request.POST or None, request.FILES or None, user=request.user, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            models = services.train(
                request.user, d["train_request"], model_file=d.get("pretrained_file")
            )
        except services.ModelError as exc:
            form.add_error("network_source" if exc.field == "network" else "dataset", str(exc))
        except REFUSALS as exc:  # over a quota or a parameter limit
            add_refusal(form, exc)
        else:
            if len(models) > 1:
                messages.success(request, f"Started a sweep of {len(models)} models.")
                return redirect("home")
            return redirect("mlmodels:detail", pk=models[0].pk)
    if request.method == "POST":
        form.keep_upload()  # refused: the model file is not asked for again
    return render(request, "mlmodels/new.html", {"form": form})


@login_required
def model_detail(request, pk):
    model = _model(request, pk)
    saved = snapshots.epochs(model.pk)
    manifest = model.dataset.manifest
    task = tasks.task_of(manifest)
    columns = task.epoch_columns(manifest.get("label_names"))
    epochs = [
        {**e, "values": [e.get(key) for key, _ in columns]} for e in history.recorded_epochs(model)
    ]
    return render(
        request,
        "mlmodels/detail.html",
        {
            "model": model,
            "job": model.job,
            "snapshots": saved,
            "epochs": epochs,
            "columns": [title for _, title in columns],
            "task": task,
            "can_change": permissions.can(request.user, permissions.CHANGE, model),
            "can_delete": permissions.can(request.user, permissions.DELETE, model),
            "can_resume": history.may_resume(model, saved)
            and permissions.can(request.user, permissions.CHANGE, model),
            "sweep": TrainedModel.objects.filter(sweep=model.sweep).exclude(pk=model.pk)
            if model.sweep
            else [],
            "chart_config": {
                "steps_per_epoch": model.result.get("steps_per_epoch"),
                "label_names": manifest.get("label_names") or [],
                "columns": [key for key, _ in columns],
                "download_url": reverse("mlmodels:download", args=[model.pk]),
                "metrics_url": reverse("job-metrics", args=[model.job_id]) if model.job_id else "",
            },
            "can_test": single_inference.inference_form_class(model) is not None,
            "can_classify": tasks.task_of(model.dataset.manifest).name == "classification",
        },
    )


@login_required
def model_download(request, pk):
    return export.download_response(_model(request, pk), request.GET.get("epoch"))


@login_required
def model_classify(request, pk):
    """Classify one image (upload or dataset entry) on the warm path; optionally DIGITS'
    per-layer visualizations and statistics."""
    model = _model(request, pk)
    result = error = None
    if request.method == "POST":
        try:
            result = classify_one(
                model, request.user, **_classify_options(request.POST, request.FILES)
            )
        except InferenceError as exc:
            error = str(exc)
    return render(
        request,
        "mlmodels/classify.html",
        {"model": model, "result": result, "error": error, "snapshots": snapshots.epochs(model.pk),
         "form": request.POST},
    )  # fmt: skip


@login_required
def model_test(request, pk):
    """DIGITS' "Test": the data plugin's inference form, the output through a view plugin."""
    model = _model(request, pk)
    form_class = single_inference.inference_form_class(model)
    if form_class is None:
        raise Http404("The model's dataset type has no inference form.")
    views = catalog.visualizations_for(tasks.task_of(model.dataset.manifest).name)
    chosen = request.POST.get("view") or request.GET.get("view") or ""
    chosen = chosen if chosen in views else next(iter(views), "")
    data, files = (request.POST, request.FILES) if request.method == "POST" else (None, None)
    form = form_class(data, files)
    configs = _config_forms(views, chosen, data)
    context = {"model": model, "form": form, "views": views, "chosen": chosen, "errors": []}
    if data is not None and chosen:
        try:
            context.update(_test(request, model, form, views[chosen], configs.get(chosen)))
        except single_inference.InferenceInputError as exc:
            if exc.timed_out:
                context["form"] = form = form_class()
            context["errors"] = [m for k, ms in exc.errors.items() if k not in form.fields
                                 for m in ms]  # fmt: skip
    elif data is not None:
        context["errors"] = ["No view plugin is installed to show the output."]
    context.update(
        inference_form=_rendered(single_inference.data_type(model).get_inference_template(form),
                                 request),
        configs=[(views[v], _rendered(views[v].get_config_template(c), request), v == chosen)
                 for v, c in configs.items()],
        snapshots=snapshots.epochs(model.pk),
    )  # fmt: skip
    return render(request, "mlmodels/test.html", context)


def _rendered(template_and_context, request):
    """A plugin's ``(template name, context)`` rendered with exactly that context."""
    from django.template.loader import render_to_string
    from django.utils.safestring import mark_safe

    name, context = template_and_context
    return mark_safe(render_to_string(name, context, request))


def _config_forms(views, chosen, data) -> dict:
    """Each view's config form, prefixed by its id; only the chosen one is bound."""
    forms = {}
    for view_id, view_class in views.items():
        form_class = view_class.get_config_form()
        if form_class is not None:
            forms[view_id] = form_class(data if view_id == chosen else None, prefix=view_id)
    return forms


def _test(request, model, form, view_class, config_form) -> dict:
    if config_form is not None and not config_form.is_valid():
        raise single_inference.InferenceInputError({"view options": ["See the view's options."]})
    epoch = request.POST.get("epoch", "")
    results = single_inference.read_inputs(model, request.user, form)
    used = single_inference.predict(model, results, int(epoch) if epoch.isdigit() else None)
    config = config_form.cleaned_data if config_form is not None else {}
    rendered = single_inference.rendered_views(model, results, view_class, config, request)
    return {"epoch": used, **rendered}


def _classify_options(post, files) -> dict:
    """The classify form's fields as ``classify_one`` takes them; bad ones name the field."""
    image = files.get("image")
    options = {"stage": post.get("stage", "val"), "layers": bool(post.get("layers"))}
    if image is not None:
        options["image"] = image.read()
    elif post.get("index", "").strip():
        options["index"] = _number(post, "index", 0)
    for name, low in (("top_n", 1), ("epoch", 1)):
        if post.get(name, "").strip():
            options[name] = _number(post, name, low)
    if options.get("top_n", 1) > MAX_TOP_N:
        raise InferenceError(f"top_n: at most {MAX_TOP_N}.", 400, "top_n")
    if options["stage"] not in ("train", "val", "test"):
        raise InferenceError("stage: train, val or test.", 400, "stage")
    return options


def _number(post, name: str, low: int) -> int:
    value = post[name].strip()
    if not value.isdigit() or int(value) < low:
        raise InferenceError(f"{name}: a whole number of at least {low}.", 400, name)
    return int(value)


@login_required
@require_POST
def model_resume(request, pk):
    model = _model(request, pk, permissions.CHANGE)
    try:
        services.resume(model, request.user)
        messages.success(request, "Training resumed from the last snapshot.")
    except services.ModelError as exc:
        messages.error(request, str(exc))
    return redirect("mlmodels:detail", pk=pk)


@login_required
@require_POST
def model_clone(request, pk):
    model = _model(request, pk)
    try:
        new = services.clone(model, request.user)
    except services.ModelError as exc:
        messages.error(request, str(exc))
        return redirect("mlmodels:detail", pk=pk)
    return redirect("mlmodels:detail", pk=new.pk)


@login_required
@require_POST
def model_delete(request, pk):
    model = _model(request, pk, permissions.DELETE)
    try:
        services.delete(model)
    except JobStateError as exc:
        messages.error(request, str(exc))
        return redirect("mlmodels:detail", pk=pk)
    messages.success(request, f"Model “{model.name}” deleted.")
    return redirect("home")


@login_required
def lr_preview(request):
    """Points of the learning-rate curve for the form's preview chart (JSON)."""
    from apps.mlmodels.lr_policies import curve

    try:
        max_iter = max(1, int(request.GET.get("epochs", 30)) * 100)
        kwargs = {
            "policy": request.GET.get("policy", "step"),
            "base_lr": float(request.GET.get("base_lr", "0.01").split(",")[0]),
            "gamma": float(request.GET.get("gamma", 0.1)),
            "power": float(request.GET.get("power", 1)),
            "step_size": float(request.GET.get("step_size", 33)),
            "step_values": tuple(
                float(v) for v in request.GET.get("step_values", "50").split(",") if v.strip()
            ),
        }
        points = curve(max_iter=max_iter, **kwargs)
    except (ValueError, OverflowError, ZeroDivisionError) as exc:
        return HttpResponse(
            json.dumps({"error": str(exc)}), status=400, content_type="application/json"
        )
    data = {"epochs": [i / 100 for i, _ in points], "lr": [lr for _, lr in points]}
    return HttpResponse(json.dumps(data), content_type="application/json")
