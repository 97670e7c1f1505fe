"""Evaluation pieces other apps' pages show: a model's evaluations, the compare figures.

Template tags, so the models app's pages show them without importing this app (which
sits above it)."""

from django import template

from apps.evaluations import compare
from apps.evaluations.models import Evaluation

register = template.Library()


@register.inclusion_tag("evaluations/_model_evaluations.html", takes_context=True)
def model_evaluations(context, model):
    user = context["request"].user
    evaluations = Evaluation.objects.filter(model=model).select_related("dataset")
    return {"model": model, "evaluations": evaluations.visible_to(user)[:20]}


@register.inclusion_tag("evaluations/_compare.html", takes_context=True)
def evaluation_figures(context, rows):
    """``rows``: the compare page's rows (each with its ``model``)."""
    return compare.figures([row["model"] for row in rows], context["request"].user)
