"""What the job page shows of a job, in words: its parameters with human labels (the
technical rest folded away), its place in the queue, and what it belongs to.

Queries and formatting only; the page (``apps.jobs.views.job_detail``) and the REST
detail (``queue_position``) read the same functions.
"""

from __future__ import annotations

import json
from typing import Any

from apps.jobs.kinds import domain_rules, get_kind
from apps.jobs.models import Job, JobStatus

#: Labels of parameters whose name alone says little; others are the name in words.
LABELS = {
    "base_lr": "Base learning rate", "lr": "Learning rate", "val_interval": "Validation every (epochs)",
    "snapshot_interval": "Snapshot every (epochs)", "metrics_every": "Metrics every (steps)",
    "batch_size": "Batch size", "top_n": "Top N", "step_seconds": "Seconds per step",
    "use_tensorflow": "Use TensorFlow", "fail_at_step": "Fail at step", "gpus": "GPUs",
    "ids": "GPU ids", "mode": "Mode", "type_id": "Dataset type",
}  # fmt: skip
#: Keys whose values are machinery (storage keys, manifests, ids): in the folded detail only.
TECHNICAL = {"prefix", "manifest", "upload_key", "model_id", "dataset_id", "id", "keys",
             "code", "sha256", "checksums", "uploads", "inputs", "staging"}  # fmt: skip


def kind_title(job: Job) -> str:
    try:
        return get_kind(job.kind).title
    except LookupError:
        return job.kind


def label(key: str) -> str:
    return LABELS.get(key) or key.replace("_", " ").strip().capitalize()


def human(value: Any) -> str:
    """A parameter value as words: Yes/No, — for nothing, lists joined, numbers trimmed."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value)
    return str(value)


def _scalar(value: Any) -> bool:
    return not isinstance(value, dict) and not (
        isinstance(value, list) and any(isinstance(v, dict | list) for v in value)
    )


def param_rows(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) for the parameters worth reading; one level of groups flattened
    ("Solver · Base learning rate"); storage keys, manifests and code left to the detail."""
    rows: list[tuple[str, str]] = []
    for key, value in params.items():
        if key in TECHNICAL:
            continue
        if _scalar(value):
            rows.append((label(key), human(value)))
        elif isinstance(value, dict):
            group = label(key)
            rows.extend(
                (f"{group} · {label(k)}", human(v))
                for k, v in value.items()
                if k not in TECHNICAL and _scalar(v)
            )
    return rows


def technical(params: dict[str, Any]) -> str:
    """Every parameter, as indented JSON (the folded detail)."""
    return json.dumps(params, indent=2, sort_keys=True, default=str)


def queue_position(job: Job) -> int | None:
    """1 for the next job its queue runs, 2 for the one after...; None unless queued."""
    if job.status != JobStatus.QUEUED:
        return None
    ahead = Job.objects.filter(
        queue=job.queue, status=JobStatus.QUEUED, created_at__lt=job.created_at
    ).count()
    return ahead + 1


def products(job: Job, user) -> dict[str, list[tuple[str, str]]]:
    """Links to what the job builds and the files it made elsewhere (its kind's rules)."""
    rules = domain_rules(job.kind)
    if rules is None or rules.products is None:
        return {"links": [], "downloads": []}
    return rules.products(job, user)
