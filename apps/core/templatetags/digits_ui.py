"""How the pages show things: values for people (no Python reprs), one colour per status,
log levels, and the navigation's active item. ``{% load digits_ui %}``."""

from __future__ import annotations

import math
import re

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, json_script
from django.utils.safestring import mark_safe

register = template.Library()

#: Status → Bootstrap colour, one scheme for jobs, datasets, models and evaluations.
STATUS_COLOURS = {
    "queued": "secondary",
    "building": "primary",
    "training": "primary",
    "running": "primary",
    "done": "success",
    "ready": "success",
    "loaded": "success",
    "error": "danger",
    "failed": "danger",
    "aborted": "warning",
}
#: Words that keep their own spelling when a key is made readable.
WORDS = {
    "lr": "LR",
    "gpu": "GPU",
    "gpus": "GPUs",
    "cpu": "CPU",
    "gflops": "GFLOPS",
    "id": "ID",
    "ids": "IDs",
    "sgd": "SGD",
    "adam": "Adam",
    "rmsprop": "RMSprop",
    "iou": "IoU",
    "dice": "Dice",
    "val": "validation",
    "std": "std",
    "hwc": "HWC",
    "chw": "CHW",
    "png": "PNG",
    "jpeg": "JPEG",
}
#: Keys whose values have a unit, and the unit.
UNITS = {
    "crop_percent": "%",
    "max_error_percent": "%",
    "step_size": "% of training",
    "step_values": "% of training",
    "rotation_degrees": "°",
    "val_interval": "epochs",
    "snapshot_interval": "epochs",
    "epochs": "epochs",
    "steps_per_epoch": "steps",
    "seconds": "s",
    "epoch_seconds": "s",
    "images_per_second": "images/s",
    "cpu_percent": "%",
}
#: Keys with a better name than their words.
LABELS = {
    "base_lr": "Base learning rate",
    "steps_per_epoch": "Steps per epoch",
    "val_interval": "Validation interval",
    "noise_stddev": "Noise (std, pixel units)",
    "policy": "Learning-rate policy",
    "batch_size": "Batch size",
    "resize_mode": "Resize mode",
}


@register.simple_tag
def key_words_script():
    """``human_key``'s words, labels and units as a JSON script (``#key-words``), so a
    page's live tables (static/digits/jobs.js) name metrics as the server does."""
    return json_script({"labels": LABELS, "words": WORDS, "units": UNITS}, "key-words")


@register.filter
def human_key(key) -> str:
    """``"base_lr"`` → "Base learning rate", ``"gpu_mode"`` → "GPU mode", ``"train/loss"`` →
    "Train loss"."""
    key = str(key)
    if key in LABELS:
        return LABELS[key]
    words = [WORDS.get(w.lower(), w) for w in re.split(r"[_/\s.-]+", key) if w]
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else ""


@register.filter
def human_value(value, key=None) -> str:
    """A value as a person reads it: "—" for nothing, Yes/No, lists joined, mappings as
    "key: value" pairs, numbers without float noise, the key's unit where it has one."""
    unit = UNITS.get(str(key), "") if key is not None else ""
    if isinstance(value, str) and key in ("optimizer", "policy", "mean_subtraction"):
        value = WORDS.get(value, value.capitalize())
    text = _plain(value)
    if unit and text not in ("—", ""):
        return text + unit if unit in ("%", "°") else f"{text} {unit}"
    return text


def _plain(value) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        if "upload_key" in value:  # an uploaded file: its name, never the store key
            return str(value.get("name") or "uploaded file")
        return "; ".join(f"{human_key(k)}: {_plain(v)}" for k, v in value.items())
    return str(value)


def _number(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) < 1e-3 or abs(value) >= 1e6:
        return f"{value:.3g}"
    return f"{value:.4g}"


@register.filter
def human_items(mapping) -> list[tuple[str, str]]:
    """``(label, value)`` rows of an options mapping, nested mappings flattened one level."""
    rows = []
    for key, value in (mapping or {}).items():
        if isinstance(value, dict) and "upload_key" not in value and value:
            rows += [
                (f"{human_key(key)}: {human_key(k)}", human_value(v, k)) for k, v in value.items()
            ]
        else:
            rows.append((human_key(key), human_value(value, key)))
    return rows


@register.filter
def status_colour(status) -> str:
    """The Bootstrap colour of a status (``text-bg-…``), the same on every page."""
    return STATUS_COLOURS.get(str(status), "secondary")


@register.simple_tag
def status_badge(status, label=None, element_id=""):
    """``<span class="badge text-bg-success">Ready</span>``, coloured by ``status_colour``."""
    attrs = format_html(' id="{}"', element_id) if element_id else ""
    return format_html(
        '<span class="badge text-bg-{} status-{}"{}>{}</span>',
        status_colour(status),
        status,
        attrs,
        label or str(status).capitalize(),
    )


@register.simple_tag(takes_context=True)
def nav_link(context, url_name, label, css="dropdown-item"):
    """A navigation link; the current page's is marked ``active`` and ``aria-current``."""
    try:
        url = reverse(url_name)
    except NoReverseMatch:
        return ""
    request = context.get("request")
    current = request is not None and request.path == url
    return format_html(
        '<a class="{}{}" href="{}"{}>{}</a>',
        css,
        " active" if current else "",
        url,
        mark_safe(' aria-current="page"') if current else "",
        label,
    )


@register.simple_tag(takes_context=True)
def nav_section(context, *namespaces) -> str:
    """ " active" when the current page belongs to one of ``namespaces`` (the group's
    toggle is marked so)."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    name = match.view_name if match else ""
    for namespace in namespaces:
        if name == namespace or name.startswith(namespace + ":"):
            return " active"
    return ""


@register.filter
def gpu_text(gpus) -> str:
    """A model's GPU choice in words: "Next available", "GPUs 0, 1", "2 GPUs", "CPU only"."""
    gpus = gpus or {}
    mode = gpus.get("mode") or "next"
    if mode == "specific":
        ids = gpus.get("ids") or []
        return ("GPU " if len(ids) == 1 else "GPUs ") + ", ".join(str(i) for i in ids)
    if mode == "count":
        count = gpus.get("count") or 1
        return f"{count} GPU{'s' if count != 1 else ''}"
    return "CPU only" if mode == "none" else "Next available"
