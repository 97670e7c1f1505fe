"""An archive uploaded while the object store is down: 503 with a clear message, from the
REST API and the page alike, and nothing kept (no dataset, no job, no upload object)."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.storage import get_store
from apps.datasets.models import Dataset
from apps.jobs.models import Job
from tests.faultproxy import FaultProxy

OPTIONS = {"source": "archive", "width": 8, "height": 8}


@pytest.fixture
def store_down(settings, db):
    """The platform reaches S3 through a proxy that is down; retries last one second."""
    proxy = FaultProxy.to(settings.DIGITS_S3["endpoint"])
    settings.DIGITS_S3 = {**settings.DIGITS_S3, "endpoint": proxy.address}
    settings.DIGITS_STORAGE_RETRY_SECONDS = 1
    proxy.down()
    yield proxy
    proxy.close()


def archive(name="digits.zip"):
    return SimpleUploadedFile(name, b"PK\x05\x06" + b"\x00" * 18)  # an empty zip


def assert_nothing_kept(proxy, user):
    proxy.up()
    assert not Dataset.objects.exists() and not Job.objects.exists()
    assert list(get_store().list(f"uploads/{user.pk}/")) == []


def test_the_api_answers_503_and_keeps_nothing(api_client, people, store_down):
    api = api_client.as_user(people.owner)
    reply = api.post(
        "/api/v1/datasets/",
        {"type": "image-classification", "name": "in an outage", "options": json.dumps(OPTIONS),
         "archive": archive()},
        format="multipart",
    )  # fmt: skip
    assert reply.status_code == 503, reply.content
    assert "store is unreachable" in reply.json()["detail"]
    assert reply["Retry-After"]
    assert_nothing_kept(store_down, people.owner)


def test_the_page_answers_503_with_the_form_and_keeps_nothing(client, people, store_down):
    client.force_login(people.owner)
    reply = client.post(
        "/datasets/new/image-classification/",
        {"data-source": "archive", "data-archive": archive(), "data-width": "8",
         "data-height": "8", "dataset-name": "in an outage", "dataset-visibility": "private",
         "dataset-max_error_percent": "10", "dataset-processes": "1"},
    )  # fmt: skip
    assert reply.status_code == 503
    html = reply.content.decode()
    assert "store is unreachable right now, so nothing was saved" in html
    assert 'name="dataset-name"' in html  # the form again, to submit once the store is back
    assert_nothing_kept(store_down, people.owner)
