"""Who may see, change and delete a job — the same answer on every channel.

One table (``RULES``, the one in ``apps.core.permissions``) is checked against the HTML
pages, the REST API and the websocket. Outcomes:

- ``ok``    the action happens (200 / 201 / 204 / redirect, websocket accepted);
- ``403``   the user sees the job but may not do this to it;
- ``404``   the job does not exist for this user (HTML, REST, websocket close 4404);
- ``anon``  not logged in: login redirect (HTML), 401 (REST), close 4401 (websocket).

The private job has the team set, so a team role alone must not reveal it.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.datasets.models import Dataset
from apps.jobs import services
from apps.jobs.kinds import get_kind
from apps.jobs.models import Job, JobStatus
from apps.mlmodels.models import TrainedModel

WHO = ("owner", "team_viewer", "team_member", "team_admin", "other", "staff", "anonymous")

RULES_TABLE = """
visibility action  owner  team_viewer team_member team_admin other staff anonymous
private    view    ok     404         404         404        404   ok    anon
private    change  ok     404         404         404        404   ok    anon
private    delete  ok     404         404         404        404   ok    anon
team       view    ok     ok          ok          ok         404   ok    anon
team       change  ok     403         ok          ok         404   ok    anon
team       delete  ok     403         403         ok         404   ok    anon
public     view    ok     ok          ok          ok         ok    ok    anon
public     change  ok     403         ok          ok         403   ok    anon
public     delete  ok     403         403         ok         403   ok    anon
"""


def _parse(table: str) -> dict[tuple[str, str], dict[str, str]]:
    header, *rows = [line.split() for line in table.strip().splitlines()]
    assert tuple(header[2:]) == WHO
    return {(row[0], row[1]): dict(zip(WHO, row[2:], strict=True)) for row in rows}


RULES = _parse(RULES_TABLE)
VISIBILITIES = ("private", "team", "public")
# What a browser on http://localhost sends (tests/core/test_websockets.py varies them).
WS_HOST = (b"host", b"localhost")
WS_ORIGIN = (b"origin", b"http://localhost")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Every case makes six users; the production hasher would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def default_params():
    return get_kind("worker.check").validate_params({}, None)


def make_job(people, visibility: str, *, status: str = JobStatus.QUEUED, name: str = "") -> Job:
    job = services.submit(
        owner=people.owner, kind="worker.check", params=default_params(),
        name=name or f"{visibility} job", team=people.team, visibility=visibility,
    )  # fmt: skip
    if status != JobStatus.QUEUED:
        Job.objects.filter(pk=job.pk).update(status=status)
        job.refresh_from_db()
    return job


def person(people, who: str):
    return None if who == "anonymous" else getattr(people, who)


# --- channels ------------------------------------------------------------------------------
def html_outcome(response, ok_status: int = 200, ok_redirect: str | None = None) -> str:
    if response.status_code == 302 and response["Location"].startswith("/accounts/login/"):
        return "anon"
    if response.status_code in (403, 404):
        return str(response.status_code)
    assert response.status_code == ok_status, response
    if ok_redirect is not None:
        assert response["Location"] == ok_redirect
    return "ok"


def rest_outcome(response, ok_status: int = 200) -> str:
    if response.status_code == 401:
        assert response["WWW-Authenticate"] == "Token"
        return "anon"
    if response.status_code in (403, 404):
        assert "detail" in response.json()
        return str(response.status_code)
    assert response.status_code == ok_status, response.content
    return "ok"


def html_view(client, job):
    response = client.get(f"/jobs/{job.pk}/")
    outcome = html_outcome(response)
    if outcome == "ok":
        assert job.name in response.content.decode()
    return outcome


def html_log(client, job):
    response = client.get(f"/jobs/{job.pk}/log.txt")
    return html_outcome(response)


def html_clone(client, job):
    before = Job.objects.count()
    outcome = html_outcome(client.post(f"/jobs/{job.pk}/clone/"), ok_status=302)
    assert Job.objects.count() == before + (outcome == "ok")
    return outcome


def html_abort(client, job):
    outcome = html_outcome(client.post(f"/jobs/{job.pk}/abort/"), 302, f"/jobs/{job.pk}/")
    if outcome == "ok":
        job.refresh_from_db()
        assert job.status == JobStatus.ABORTED and job.abort_requested
    return outcome


def html_delete(client, job):
    outcome = html_outcome(client.post(f"/jobs/{job.pk}/delete/"), 302, "/")
    if outcome == "ok":
        assert not Job.objects.filter(pk=job.pk).exists()
    return outcome


def rest_list(client, job):
    response = client.get("/api/v1/jobs/")
    outcome = rest_outcome(response)
    if outcome == "ok":
        ids = [row["id"] for row in response.json()["results"]]
        return "ok" if job.pk in ids else "404"
    return outcome


def rest_retrieve(client, job):
    response = client.get(f"/api/v1/jobs/{job.pk}/")
    outcome = rest_outcome(response)
    if outcome == "ok":
        assert response.json()["name"] == job.name
    return outcome


def rest_events(client, job):
    response = client.get(f"/api/v1/jobs/{job.pk}/events/")
    outcome = rest_outcome(response)
    if outcome == "ok":
        assert response.json()["events"][0]["data"]["status"] == "queued"
    return outcome


def rest_clone(client, job):
    response = client.post(f"/api/v1/jobs/{job.pk}/clone/")
    outcome = rest_outcome(response, ok_status=201)
    if outcome == "ok":
        assert response.json()["cloned_from"] == job.pk
    return outcome


def rest_patch(client, job):
    response = client.patch(f"/api/v1/jobs/{job.pk}/", {"name": "renamed"}, format="json")
    outcome = rest_outcome(response)
    if outcome == "ok":
        job.refresh_from_db()
        assert job.name == "renamed" == response.json()["name"]
    return outcome


def rest_abort(client, job):
    response = client.post(f"/api/v1/jobs/{job.pk}/abort/")
    outcome = rest_outcome(response)
    if outcome == "ok":
        assert response.json()["status"] == JobStatus.ABORTED
    return outcome


def rest_delete(client, job):
    outcome = rest_outcome(client.delete(f"/api/v1/jobs/{job.pk}/"), ok_status=204)
    if outcome == "ok":
        assert not Job.objects.filter(pk=job.pk).exists()
    return outcome


@dataclass
class Channel:
    action: str
    call: Callable
    api: bool = False
    job_status: str = JobStatus.QUEUED  # delete needs a finished job


CHANNELS = {
    "html-view": Channel("view", html_view),
    "html-log": Channel("view", html_log),
    "html-clone": Channel("view", html_clone),
    "html-abort": Channel("change", html_abort),
    "html-delete": Channel("delete", html_delete, job_status=JobStatus.DONE),
    "rest-list": Channel("view", rest_list, api=True),
    "rest-retrieve": Channel("view", rest_retrieve, api=True),
    "rest-events": Channel("view", rest_events, api=True),
    "rest-clone": Channel("view", rest_clone, api=True),
    "rest-patch-name": Channel("change", rest_patch, api=True),
    "rest-abort": Channel("change", rest_abort, api=True),
    "rest-delete": Channel("delete", rest_delete, api=True, job_status=JobStatus.DONE),
}


def client_for(user, api: bool):
    if api:
        client = APIClient()
        if user is not None:
            _, key = ApiToken.issue(user, "tests")
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_permission_matrix(people, channel, visibility):
    """One row of RULES: every kind of user tries ``channel`` on a fresh job."""
    spec = CHANNELS[channel]
    outcomes = {}
    for who in WHO:
        job = make_job(people, visibility, status=spec.job_status)
        outcomes[who] = spec.call(client_for(person(people, who), spec.api), job)
        if outcomes[who] != "ok":  # a refused request changes nothing
            job.refresh_from_db()
            unchanged = (f"{visibility} job", spec.job_status, False)
            assert (job.name, job.status, job.abort_requested) == unchanged, who

    assert outcomes == RULES[(visibility, spec.action)]


# --- websocket -----------------------------------------------------------------------------
@pytest.fixture
def memory_layer(settings):
    """The in-memory channel layer for the websocket permission tests.

    What they check — who may open which socket — does not depend on the layer, and each
    ``async_to_sync`` call runs in an event loop of its own: channels-redis keeps state per
    loop and may leave a cancelled read pending when one closes, which once hung a test
    at loop shutdown. tests/jobs/test_events.py covers the Redis layer, one loop per test.
    """
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


async def ws_connect(
    path: str, headers: list[tuple[bytes, bytes]], hello: bool = True, subprotocols=None
):
    """Connect to ``path``; ("accept", first message) or (close code, None).

    Every socket is accepted: a refusal is a close with a 44xx code right after.
    """
    from channels.testing import WebsocketCommunicator

    from digits_site.asgi import application

    communicator = WebsocketCommunicator(
        application, path, headers=headers, subprotocols=subprotocols
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected, "refusals accept first, then close with a code"
    if not hello and await communicator.receive_nothing(timeout=0.5):
        await communicator.disconnect()
        return "accept", None
    first = await communicator.receive_output(timeout=5)
    if first["type"] == "websocket.close":
        await communicator.wait()
        return first["code"], None
    await communicator.disconnect()
    return "accept", json.loads(first["text"])


def ws_headers(user) -> list[tuple[bytes, bytes]]:
    if user is None:
        return [WS_HOST, WS_ORIGIN]
    _, key = ApiToken.issue(user, "ws")
    return [WS_HOST, WS_ORIGIN, (b"authorization", f"Token {key}".encode())]


WS_CODE = {"ok": "accept", "404": 4404, "anon": 4401}


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_websocket_follows_view_permission(transactional_db, memory_layer, people, visibility):
    # Rows made directly: a submitted job would leave a broker message behind.
    job = Job.objects.create(
        owner=people.owner, team=people.team, visibility=visibility, name="ws",
        kind="worker.check", params=default_params(), last_seq=7,
    )  # fmt: skip
    connect = async_to_sync(ws_connect)
    outcomes = {}
    for who in WHO:
        code, hello = connect(f"/ws/jobs/{job.pk}/", ws_headers(person(people, who)))
        outcomes[who] = code
        if code == "accept":
            assert hello == {"type": "hello", "job": job.pk, "last_seq": 7}

    expected = {who: WS_CODE[outcome] for who, outcome in RULES[(visibility, "view")].items()}
    assert outcomes == expected


def test_websocket_unknown_job_is_4404(transactional_db, memory_layer, people):
    code, _ = async_to_sync(ws_connect)("/ws/jobs/987654/", ws_headers(people.staff))
    assert code == 4404


def test_websocket_job_list_needs_a_user(transactional_db, memory_layer, people):
    connect = async_to_sync(ws_connect)
    assert connect("/ws/jobs/", ws_headers(None), hello=False)[0] == 4401
    assert connect("/ws/jobs/", ws_headers(people.other), hello=False)[0] == "accept"


# --- lists ---------------------------------------------------------------------------------
def visible_names(who: str, suffix: str) -> set[str]:
    return {f"{v} {suffix}" for v in VISIBILITIES if RULES[(v, "view")][who] == "ok"}


@pytest.fixture
def catalogue(people):
    """A job, dataset and model of each visibility, plus another user's private job."""
    for visibility in VISIBILITIES:
        make_job(people, visibility)
        shared = {"owner": people.owner, "team": people.team, "visibility": visibility}
        dataset = Dataset.objects.create(name=f"{visibility} dataset", type="images", **shared)
        TrainedModel.objects.create(name=f"{visibility} model", dataset=dataset, **shared)
    services.submit(
        owner=people.other, kind="worker.check", params=default_params(), name="oscar's job"
    )
    return people


@pytest.mark.parametrize("who", WHO[:-1])
@pytest.mark.parametrize(
    "url, model, suffix",
    [("/api/v1/jobs/", Job, "job"), ("/api/v1/datasets/", Dataset, "dataset"),
     ("/api/v1/models/", TrainedModel, "model")],
)  # fmt: skip
def test_rest_lists_show_exactly_the_visible_objects(
    catalogue, api_client, who, url, model, suffix
):
    client = api_client.as_user(getattr(catalogue, who))
    names = {row["name"] for row in client.get(url).json()["results"]}

    expected = visible_names(who, suffix)
    if suffix == "job" and who in ("other", "staff"):
        expected.add("oscar's job")
    assert names == expected
    for obj in model.objects.filter(owner=catalogue.owner):
        status = client.get(f"{url}{obj.pk}/").status_code
        assert status == (200 if obj.name in expected else 404), obj.name


@pytest.mark.parametrize("who", WHO[:-1])
def test_home_page_lists_only_visible_objects(catalogue, client, who):
    client.force_login(getattr(catalogue, who))
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()

    for key, suffix in [("jobs", "job"), ("datasets", "dataset"), ("models", "model")]:
        shown = {obj.name for obj in response.context[key]}
        expected = visible_names(who, suffix)
        if key == "jobs" and who in ("other", "staff"):
            expected.add("oscar's job")
        assert shown == expected, key
        for visibility in VISIBILITIES:
            assert (f"{visibility} {suffix}" in page) == (f"{visibility} {suffix}" in expected)


def test_home_page_needs_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_inactive_user_sees_nothing(catalogue, api_client):
    user = catalogue.owner
    client = api_client.as_user(user)
    user.is_active = False
    user.save()
    assert client.get("/api/v1/jobs/").status_code == 401
