"""Idempotency-Key on POSTs that create things, and JSON (never HTML) server errors."""

import pytest
from django.test import RequestFactory

from apps.accounts.models import ApiToken
from apps.core.api import server_error
from apps.core.models import IdempotencyKey
from apps.jobs import services
from apps.jobs.models import Job
from digits_site import urls

pytestmark = pytest.mark.usefixtures("transactional_db")

JOB = {"kind": "worker.check", "params": {"steps": 1}}


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(
        services.outbox, "publish_on_commit", lambda job_id, queue, delay_ms=None: None
    )


def post(client, url, data, key):
    return client.post(url, data, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_answers_the_first_answer_and_creates_one_job(people, api_client):
    client = api_client.as_user(people.owner)

    first = post(client, "/api/v1/jobs/", JOB, "submit-1")
    again = post(client, "/api/v1/jobs/", JOB, "submit-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Job.objects.filter(owner=people.owner).count() == 1
    other = post(client, "/api/v1/jobs/", JOB, "submit-2")
    assert other.json()["id"] != first.json()["id"]
    assert Job.objects.filter(owner=people.owner).count() == 2


def test_a_different_body_with_the_same_key_answers_422(people, api_client):
    client = api_client.as_user(people.owner)
    post(client, "/api/v1/jobs/", JOB, "k")

    response = post(client, "/api/v1/jobs/", {**JOB, "params": {"steps": 2}}, "k")

    assert response.status_code == 422
    assert "different request" in response.json()["detail"]
    assert Job.objects.filter(owner=people.owner).count() == 1


def test_keys_belong_to_one_user(people, api_client):
    post(api_client.as_user(people.owner), "/api/v1/jobs/", JOB, "shared")

    response = post(api_client.as_user(people.other), "/api/v1/jobs/", JOB, "shared")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Job.objects.count() == 2


def test_a_validation_error_is_replayed_too(people, api_client):
    client = api_client.as_user(people.owner)
    bad = {"kind": "worker.check", "params": {"steps": 0}}

    first = post(client, "/api/v1/jobs/", bad, "bad")
    again = post(client, "/api/v1/jobs/", bad, "bad")

    assert first.status_code == again.status_code == 400
    assert again.json() == first.json() and "params" in first.json()


def test_token_creation_is_idempotent(people, api_client):
    client = api_client.as_user(people.owner)
    before = ApiToken.objects.filter(user=people.owner).count()

    first = post(client, "/api/v1/tokens/", {"name": "ci"}, "token-1")
    again = post(client, "/api/v1/tokens/", {"name": "ci"}, "token-1")

    assert first.status_code == 201, first.content
    assert again.json() == first.json()
    assert ApiToken.objects.filter(user=people.owner).count() == before + 1


def test_a_server_error_is_json_and_releases_the_key(people, api_client, monkeypatch):
    client = api_client.as_user(people.owner)

    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "submit", broken)
    response = post(client, "/api/v1/jobs/", JOB, "retry-me")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert "Server error" in response.json()["detail"]
    assert not IdempotencyKey.objects.filter(key="retry-me").exists()
    monkeypatch.undo()
    monkeypatch.setattr(
        services.outbox, "publish_on_commit", lambda job_id, queue, delay_ms=None: None
    )
    assert post(client, "/api/v1/jobs/", JOB, "retry-me").status_code == 201


def test_handler500_answers_json_under_the_api():
    assert urls.handler500 == "apps.core.api.server_error"

    api = server_error(RequestFactory().get("/api/v1/anything/"))
    page = server_error(RequestFactory().get("/jobs/"))

    assert api.status_code == page.status_code == 500
    assert api["Content-Type"] == "application/json"
    assert page["Content-Type"].startswith("text/html")


def test_expired_keys_are_purged(people, api_client, settings):
    from datetime import timedelta

    from django.utils import timezone

    from apps.core import idempotency

    client = api_client.as_user(people.owner)
    first = post(client, "/api/v1/jobs/", JOB, "old")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))

    assert idempotency.purge() == 1
    again = post(client, "/api/v1/jobs/", JOB, "old")
    assert again.json()["id"] != first.json()["id"]
