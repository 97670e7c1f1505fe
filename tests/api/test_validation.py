"""Bad input gets a clear answer: 400 naming the field, 404, 409 or 413 with the limit."""

import json
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.accounts.models import Team
from apps.jobs import events, services
from apps.jobs.kinds import get_kind
from apps.jobs.models import Job, JobStatus

JOBS = "/api/v1/jobs/"


def error_at(body, path):
    """The error messages at ``path`` (keys into nested DRF errors)."""
    for key in path:
        assert isinstance(body, dict) and key in body, f"no error at {path}: {body}"
        body = body[key]
    assert body and all(isinstance(m, str) and m for m in body), body
    return " ".join(body)


def make_job(owner, **fields):
    params = get_kind("worker.check").validate_params({}, owner)
    return services.submit(owner=owner, kind="worker.check", params=params, **fields)


# --- creating jobs -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload, path, says",
    [
        ({}, ["kind"], "required"),
        ({"kind": "nope"}, ["kind"], "Unknown job kind 'nope'. Choose one of: worker.check."),
        ({"kind": "worker.check", "params": {"steps": 0}}, ["params", "steps"], "greater than or equal to 1"),
        ({"kind": "worker.check", "params": {"steps": 10**9}}, ["params", "steps"], "less than or equal to 100000"),
        ({"kind": "worker.check", "params": {"matrix_size": "big"}}, ["params", "matrix_size"], "valid integer"),
        ({"kind": "worker.check", "params": {"step_seconds": -1}}, ["params", "step_seconds"], "greater than or equal to 0"),
        ({"kind": "worker.check", "params": {"queue": "tpu"}}, ["params", "queue"], "not a valid choice"),
        ({"kind": "worker.check", "params": [1, 2]}, ["params", "non_field_errors"], "Expected a dictionary"),
        ({"kind": "worker.check", "visibility": "team"}, ["team"], "Choose the team to share with."),
        ({"kind": "worker.check", "visibility": "world"}, ["visibility"], "not a valid choice"),
        ({"kind": "worker.check", "team": "nope"}, ["team"], "does not exist"),
        ({"kind": "worker.check", "team": "audio", "visibility": "team"}, ["team"], "only share with teams where you are a member"),
        ({"kind": "worker.check", "name": "x" * 201}, ["name"], "no more than 200 characters"),
    ],
)  # fmt: skip
def test_invalid_job_submissions_name_the_field(people, api_client, payload, path, says):
    Team.objects.create(name="Audio", slug="audio")  # olivia is not a member
    client = api_client.as_user(people.owner)

    response = client.post(JOBS, payload, format="json")

    assert response.status_code == 400
    assert says in error_at(response.json(), path)
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "who, status",
    [
        ("team_viewer", 400),
        ("team_member", 201),
        ("team_admin", 201),
        ("other", 400),
        ("staff", 201),
    ],
)
def test_sharing_with_a_team_needs_member_role(people, api_client, who, status):
    client = api_client.as_user(getattr(people, who))
    payload = {"kind": "worker.check", "team": "vision", "visibility": "team"}

    response = client.post(JOBS, payload, format="json")

    assert response.status_code == status
    if status == 400:
        assert "only share with teams" in error_at(response.json(), ["team"])
    else:
        assert (response.json()["team"], response.json()["visibility"]) == ("vision", "team")


def test_valid_submission_fills_defaults(people, api_client):
    response = api_client.as_user(people.owner).post(
        JOBS, {"kind": "worker.check", "params": {"steps": 3, "queue": "gpu"}}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["queue"], body["owner"], body["name"]) == (
        "queued", "gpu", "olivia", "Worker check",
    )  # fmt: skip
    assert body["params"] == {
        "queue": "gpu", "steps": 3, "step_seconds": 0.5, "matrix_size": 256,
        "use_tensorflow": False, "fail_at_step": None,
    }  # fmt: skip


def test_malformed_json_is_400(people, api_client):
    client = api_client.as_user(people.owner)
    response = client.post(JOBS, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


# --- changing jobs -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload, path, says",
    [
        ({"kind": "other.kind"}, ["kind"], "cannot change"),
        ({"params": {"steps": 5}}, ["params"], "cannot change; clone it"),
        ({"visibility": "team"}, ["team"], "Choose the team"),
        ({"team": "audio"}, ["team"], "only share with teams"),
        ({"name": ""}, ["name"], "may not be blank"),
    ],
)
def test_invalid_job_changes_name_the_field(people, api_client, payload, path, says):
    Team.objects.create(name="Audio", slug="audio")
    job = make_job(people.owner, name="mine")

    response = api_client.as_user(people.owner).patch(f"{JOBS}{job.pk}/", payload, format="json")

    assert response.status_code == 400
    assert says in error_at(response.json(), path)
    job.refresh_from_db()
    assert (job.name, job.team, job.visibility) == ("mine", None, "private")


def test_sharing_an_existing_job(people, api_client):
    job = make_job(people.owner)
    response = api_client.as_user(people.owner).patch(
        f"{JOBS}{job.pk}/", {"team": "vision", "visibility": "team"}, format="json"
    )
    assert response.status_code == 200
    job.refresh_from_db()
    assert (job.team, job.visibility) == (people.team, "team")


@pytest.mark.parametrize(
    "method, url, status",
    [
        ("post", "/api/v1/jobs/{id}/abort/", 409),  # already finished
        ("delete", "/api/v1/jobs/{id}/", 204),
    ],
)
def test_finished_job(people, api_client, method, url, status):
    job = make_job(people.owner)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.DONE)
    response = getattr(api_client.as_user(people.owner), method)(url.format(id=job.pk))
    assert response.status_code == status
    if status == 409:
        assert response.json()["detail"] == "The job is already done."


def test_active_job_cannot_be_deleted(people, api_client, client):
    job = make_job(people.owner)

    response = api_client.as_user(people.owner).delete(f"{JOBS}{job.pk}/")
    assert response.status_code == 409
    assert response.json()["detail"] == "The job is still active; abort it first."

    client.force_login(people.owner)
    response = client.post(f"/jobs/{job.pk}/delete/", follow=True)
    assert response.redirect_chain == [(f"/jobs/{job.pk}/", 302)]
    assert "still active" in response.content.decode()
    assert Job.objects.filter(pk=job.pk).exists()


# --- unknown ids ---------------------------------------------------------------------------
@pytest.mark.parametrize("job_id", ["987654", "abc", "0", "-1"])
@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/api/v1/jobs/{id}/"),
        ("patch", "/api/v1/jobs/{id}/"),
        ("delete", "/api/v1/jobs/{id}/"),
        ("post", "/api/v1/jobs/{id}/abort/"),
        ("post", "/api/v1/jobs/{id}/clone/"),
        ("get", "/api/v1/jobs/{id}/events/"),
    ],
)
def test_unknown_job_ids_are_404_in_the_api(people, api_client, method, url, job_id):
    client = api_client.as_user(people.staff)  # staff sees everything that exists
    response = getattr(client, method)(url.format(id=job_id), {}, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "No job matches the given query."}


@pytest.mark.parametrize("job_id", ["987654", "abc", "-1"])
@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/jobs/{id}/"),
        ("get", "/jobs/{id}/log.txt"),
        ("post", "/jobs/{id}/abort/"),
        ("post", "/jobs/{id}/clone/"),
        ("post", "/jobs/{id}/delete/"),
    ],
)
def test_unknown_job_ids_are_404_in_pages(people, client, method, url, job_id):
    client.force_login(people.staff)
    assert getattr(client, method)(url.format(id=job_id)).status_code == 404


def test_unknown_api_paths_and_tokens_are_404(people, api_client):
    client = api_client.as_user(people.owner)
    assert client.get("/api/v1/nothing-here/").status_code == 404
    assert client.delete("/api/v1/tokens/987654/").status_code == 404
    assert client.get("/api/v1/teams/no-such-team/").status_code == 404


@pytest.mark.parametrize(
    "url", ["/api/v1/nothing-here/", "/api/v1/jobs/1.5/", "/api/v1/models/0.5/classify/"]
)
def test_api_urls_no_route_takes_answer_json_404(people, api_client, url):
    # Not Django's HTML page: the schema promises JSON errors under /api/.
    response = api_client.as_user(people.owner).post(url)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_page_urls_no_route_takes_answer_the_404_page(people, client):
    client.force_login(people.owner)
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


# --- listing jobs --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query, status",
    [
        # PostgreSQL takes offsets up to ±15:59 only; this one was a server error.
        ({"created_after": "0521-12-19T19:43:12+21:58"}, 200),
        ({"created_before": "2026-01-01T00:00:00-23:59"}, 200),
        ({"created_before": "0001-01-01T00:00:00+01:00"}, 400),  # before the first UTC time
        ({"created_after": "yesterday"}, 400),
    ],
)
def test_job_time_filters_take_any_offset(people, api_client, query, status):
    make_job(people.owner)
    response = api_client.as_user(people.owner).get(JOBS, query)
    assert response.status_code == status, response.content
    if status == 400:
        assert list(response.json()) == list(query)


# --- events --------------------------------------------------------------------------------
@pytest.fixture
def job_with_events(people):
    job = make_job(people.owner)  # seq 1: queued
    events.append(job.pk, [events.event("log", message=f"line {i}") for i in range(3)])
    events.append(job.pk, [events.event("metric", series="loss", step=1, value=0.5)])
    return job


@pytest.mark.parametrize(
    "query, field",
    [
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("type=bogus", "type"),
    ],
)
def test_bad_event_queries_are_400(job_with_events, api_client, query, field):
    client = api_client.as_user(job_with_events.owner)
    response = client.get(f"{JOBS}{job_with_events.pk}/events/?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [field]


@pytest.mark.parametrize(
    "query, seqs",
    [
        ("", [1, 2, 3, 4, 5]),
        ("after=2", [3, 4, 5]),
        ("after=5", []),
        ("after=1&limit=2", [2, 3]),
        ("type=log", [2, 3, 4]),
        ("type=metric&after=0", [5]),
    ],
)
def test_event_queries(job_with_events, api_client, query, seqs):
    client = api_client.as_user(job_with_events.owner)
    body = client.get(f"{JOBS}{job_with_events.pk}/events/?{query}").json()
    assert body["last_seq"] == 5
    assert [e["seq"] for e in body["events"]] == seqs


# --- request size --------------------------------------------------------------------------
def padded_job_payload(size: int) -> str:
    return json.dumps({"kind": "worker.check", "name": "x" * size})


def test_oversized_json_body_is_413_with_the_limit(people, api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    client = api_client.as_user(people.owner)

    response = client.post(JOBS, padded_job_payload(10_000), content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large: 9.8 KB; the limit is 4 KB."}
    assert not Job.objects.exists()
    # Just under the limit goes through to validation.
    response = client.post(JOBS, padded_job_payload(4000), content_type="application/json")
    assert response.status_code == 400 and "name" in response.json()


def test_oversized_upload_is_413_with_the_limit(people, api_client, settings):
    settings.MAX_UPLOAD_BYTES = 2 * 1024 * 1024
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096  # not the limit for uploads
    client = api_client.as_user(people.owner)

    def upload(size):
        data = {"name": "upload", "file": SimpleUploadedFile("a.bin", b"\0" * size)}
        return client.post("/api/v1/tokens/", data, format="multipart")

    response = upload(3 * 1024 * 1024)
    assert response.status_code == 413
    assert response.json()["detail"].startswith("Upload too large: 3 MB")
    assert response.json()["detail"].endswith("the limit is 2 MB.")
    # Uploads above the body limit but under the upload limit pass.
    assert upload(64 * 1024).status_code == 201


def test_oversized_form_post_to_a_page_is_413_plain_text(people, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    client = Client()
    client.force_login(people.owner)

    # As a browser sends a form without files.
    body = urlencode({"name": "x" * 10_000})
    response = client.post("/accounts/", body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == "Request body too large: 9.8 KB; the limit is 4 KB."
