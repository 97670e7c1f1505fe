"""An evaluation's downloads (the page and the API answer with the same response)."""

from __future__ import annotations

import re

from django.http import StreamingHttpResponse

from apps.evaluations import predictions, services
from apps.evaluations.models import Evaluation


def csv_response(evaluation: Evaluation) -> StreamingHttpResponse:
    """The per-entry predictions as CSV, streamed (``services.NotReady`` without them)."""
    table = services.rows(evaluation)
    lines = predictions.csv_lines(table, evaluation.class_names, evaluation.top_n)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", evaluation.name).strip("-")[:80] or "evaluation"
    filename = f"evaluation-{evaluation.pk}-{slug}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
