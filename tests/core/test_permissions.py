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
    # The live fan-out too stays in the process (apps.jobs.fanout's local transport): its
    # Redis subscription, opened on each call's loop, once hung a loop's shutdown as well.
    settings.CHANNEL_LAYER_URL = ""


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


# --- models: clone, resume, upload keys -----------------------------------------------------
# Cloning a training job (job page, job API) or its model (model page, models API) creates a
# new model owned by the caller: it follows the view rule, and never touches the original
# model (a new model id in the new job's params). Resuming follows the change rule. A key a
# client names (an upload) must be its own: "not yours" and "absent" read the same.
SOLVER = {"epochs": 1, "batch_size": 8, "base_lr": 0.01}
LENET = {"source": "standard", "name": "lenet"}
MANIFEST = {
    "label": {"kind": "class"}, "label_names": ["cat", "dog"],
    "stages": {"train": {"count": 8, "class_counts": {"0": 4, "1": 4}}},
    "feature": {"shape": [8, 8, 1], "dtype": "uint8"},
}  # fmt: skip


def make_dataset(people, visibility: str, name: str = "") -> Dataset:
    return Dataset.objects.create(
        owner=people.owner, team=people.team, visibility=visibility, status="ready",
        name=name or f"{visibility} dataset", type="image-classification", manifest=MANIFEST,
    )  # fmt: skip


def make_model(people, visibility: str, *, dataset_visibility: str | None = None):
    """A model of the owner's whose training was aborted after saving epoch 1."""
    from apps.mlmodels import services as models
    from apps.mlmodels.params import NetworkParams, SolverParams

    network, solver = NetworkParams(data=LENET), SolverParams(data=SOLVER)
    assert network.is_valid() and solver.is_valid()
    [model] = models.create(
        owner=people.owner, dataset=make_dataset(people, dataset_visibility or visibility),
        name=f"{visibility} model", network=dict(network.validated_data),
        solver=dict(solver.validated_data), team=people.team, visibility=visibility,
    )  # fmt: skip
    services.request_abort(model.job)
    model.refresh_from_db()
    return model


@pytest.fixture
def saved_epoch(monkeypatch):
    """Every model has a snapshot of epoch 1 (nothing here trains)."""
    from apps.mlmodels import snapshots

    monkeypatch.setattr(snapshots, "epochs", lambda model_id: [1])


def cloned_model(model, before: set[int], who) -> str:
    """ "ok" after checking the one new model: the caller's, a new id, trained by its own job."""
    [new] = TrainedModel.objects.exclude(pk__in=before)
    assert new.pk != model.pk and new.owner == who and new.visibility == "private"
    assert new.job.params["model_id"] == new.pk and new.job.owner == who
    assert new.job.cloned_from_id == model.job_id
    return "ok"


def model_html_clone(client, model, user):
    before = set(TrainedModel.objects.values_list("pk", flat=True))
    outcome = html_outcome(client.post(f"/models/{model.pk}/clone/"), ok_status=302)
    return cloned_model(model, before, user) if outcome == "ok" else outcome


def model_rest_clone(client, model, user):
    before = set(TrainedModel.objects.values_list("pk", flat=True))
    outcome = rest_outcome(client.post(f"/api/v1/models/{model.pk}/clone/"), ok_status=201)
    return cloned_model(model, before, user) if outcome == "ok" else outcome


def train_job_html_clone(client, model, user):
    before = set(TrainedModel.objects.values_list("pk", flat=True))
    outcome = html_outcome(client.post(f"/jobs/{model.job_id}/clone/"), ok_status=302)
    return cloned_model(model, before, user) if outcome == "ok" else outcome


def train_job_rest_clone(client, model, user):
    before = set(TrainedModel.objects.values_list("pk", flat=True))
    response = client.post(f"/api/v1/jobs/{model.job_id}/clone/")
    outcome = rest_outcome(response, ok_status=201)
    if outcome == "ok":
        assert response.json()["params"]["model_id"] != model.pk
        return cloned_model(model, before, user)
    return outcome


def model_html_resume(client, model, user):
    old_job = model.job_id
    outcome = html_outcome(client.post(f"/models/{model.pk}/resume/"), 302, f"/models/{model.pk}/")
    model.refresh_from_db()
    assert (model.job_id != old_job) == (outcome == "ok")
    return outcome


def model_rest_resume(client, model, user):
    response = client.post(f"/api/v1/models/{model.pk}/resume/")
    outcome = rest_outcome(response, ok_status=201)
    if outcome == "ok":
        model.refresh_from_db()
        assert response.json()["id"] == model.job_id and model.job.params["resume"] is True
        assert model.job.owner == model.owner  # whoever asked: the job is the owner's
    return outcome


MODEL_CHANNELS = {
    "html-model-clone": Channel("view", model_html_clone),
    "rest-model-clone": Channel("view", model_rest_clone, api=True),
    "html-train-job-clone": Channel("view", train_job_html_clone),
    "rest-train-job-clone": Channel("view", train_job_rest_clone, api=True),
    "html-model-resume": Channel("change", model_html_resume),
    "rest-model-resume": Channel("change", model_rest_resume, api=True),
}


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("channel", MODEL_CHANNELS)
def test_model_permission_matrix(people, saved_epoch, channel, visibility):
    """Clone and resume of a model (dataset shared alike) follow RULES, on every channel."""
    spec = MODEL_CHANNELS[channel]
    outcomes = {}
    for who in WHO:
        model = make_model(people, visibility)
        original = Job.objects.get(pk=model.job_id)
        user = person(people, who)
        outcomes[who] = spec.call(client_for(user, spec.api), model, user)
        assert Job.objects.get(pk=original.pk).params == original.params  # never changed
        if outcomes[who] != "ok":
            model.refresh_from_db()
            assert model.status == "aborted" and model.job.status == "aborted", who

    assert outcomes == RULES[(visibility, spec.action)]


@pytest.mark.parametrize("channel", [c for c in MODEL_CHANNELS if "clone" in c])
def test_clone_needs_the_dataset_too(people, saved_epoch, channel):
    """A public model trained on a private dataset: others see it, cannot clone it onto
    the dataset they may not see; its owner can."""
    spec = MODEL_CHANNELS[channel]
    model = make_model(people, "public", dataset_visibility="private")
    before = TrainedModel.objects.count()
    client = client_for(people.other, spec.api)
    url = {
        "html-model-clone": f"/models/{model.pk}/clone/",
        "rest-model-clone": f"/api/v1/models/{model.pk}/clone/",
        "html-train-job-clone": f"/jobs/{model.job_id}/clone/",
        "rest-train-job-clone": f"/api/v1/jobs/{model.job_id}/clone/",
    }[channel]
    response = client.post(url)
    if spec.api:
        assert response.status_code == 400, response.content
        assert "Unknown dataset" in json.dumps(response.json())
    else:
        assert response.status_code == 302  # back to the page, with the message
        assert "Unknown dataset" in client.get(response["Location"]).content.decode()
    assert TrainedModel.objects.count() == before
    assert spec.call(client_for(people.owner, spec.api), model, people.owner) == "ok"


UPLOAD_KEY_RULES = {  # who names the owner's upload key (or an absent one of their own)
    "owner": "ok", "team_viewer": "unknown", "team_member": "unknown", "team_admin": "unknown",
    "other": "unknown", "staff": "unknown",
}  # fmt: skip


def test_upload_keys_name_only_the_callers_own_uploads(people, api_client):
    """``network.upload_key`` must be one of the caller's stored uploads; anybody else's,
    and an absent one, answer the same 400 (no oracle)."""
    from apps.core import uploads
    from apps.core.storage import get_store
    from tests.conftest import grant_custom_code

    key = uploads.store_bytes(b"a .keras file", "model.keras", people.owner)
    dataset = make_dataset(people, "public")

    def post(user, upload_key):
        body = {
            "dataset": dataset.pk, "name": "uploaded", "solver": SOLVER,
            "network": {"source": "upload", "upload_key": upload_key},
        }  # fmt: skip
        return api_client.as_user(user).post("/api/v1/models/", body, format="json")

    outcomes, refusals = {}, set()
    try:
        for who in UPLOAD_KEY_RULES:
            user = grant_custom_code(person(people, who))
            response = post(user, key)
            if response.status_code == 201:
                outcomes[who] = "ok"
                continue
            assert response.status_code == 400, response.content
            outcomes[who] = "unknown"
            refusals.add(json.dumps(response.json()))
            # The caller's own key, of the right form, that holds nothing: the same answer.
            absent = f"uploads/{user.pk}/{'0' * 32}/model.keras"
            refusals.add(json.dumps(post(user, absent).json()))
            refusals.add(json.dumps(post(user, "jobs/1/report.json").json()))
    finally:
        get_store().delete(key)

    assert outcomes == UPLOAD_KEY_RULES
    assert refusals == {
        json.dumps({"network": {"upload_key": ["Unknown upload: upload the file again."]}})
    }
