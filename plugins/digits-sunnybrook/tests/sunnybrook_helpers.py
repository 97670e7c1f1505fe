"""Helpers of the Sunnybrook build tests."""

from __future__ import annotations

import json

from apps.datasets.models import Dataset
from tests.conftest import wait_until


def finished(pk):
    """The dataset once its build has ended (ready, error or aborted)."""
    return wait_until(
        lambda: Dataset.objects.exclude(status="building").filter(pk=pk).first(), timeout=120
    )


def post_json(api, options, name="LV", **extra):
    """Create an ``image-sunnybrook`` dataset through the REST API; its id."""
    body = {"type": "image-sunnybrook", "name": name, "options": options, **extra}
    reply = api.post("/api/v1/datasets/", body, format="json")
    assert reply.status_code == 201, reply.content
    return reply.json()["id"]


def post_multipart(api, options, files, name="LV", **extra):
    """The same with uploaded files, as a multipart request (options as a JSON part)."""
    data = {"type": "image-sunnybrook", "name": name, "options": json.dumps(options), **extra}
    reply = api.post("/api/v1/datasets/", {**data, **files}, format="multipart")
    assert reply.status_code == 201, reply.content
    return reply.json()["id"]
