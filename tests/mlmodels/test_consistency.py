"""Models and their jobs stay consistent and private under hostile or racing requests.

- A job's params never show a user what they may not see (a shared model's private dataset).
- Running custom code (network code, uploaded model files) is a permission: per user, per
  team, on for superusers; the form hides those sources, the API refuses them naming
  ``network``; a model whose owner lost it is neither resumed nor cloned.
- Resume, delete and abort racing on one model: one wins, the others answer 409 (or 404
  once the model is gone), never 500; never two active training jobs for one model.
- Inference inputs have the limits of dataset import; malformed options are 400s.

Nothing here trains: snapshots are pretended (``saved_epoch``) and no message is sent.
"""

import io
import threading

import pytest
from django.db import connection
from PIL import Image

from apps.accounts.models import Team
from apps.core import uploads
from apps.core.storage import get_store
from apps.datasets.models import Dataset
from apps.jobs import services as jobs
from apps.jobs.models import ACTIVE_STATUSES, Job
from apps.mlmodels.models import TrainedModel
from apps.mlmodels.services import CUSTOM_CODE_REFUSED
from tests.conftest import grant_custom_code
from tests.core.test_permissions import LENET, SOLVER, make_dataset, make_model
from tests.jobs.helpers import no_messages

MODELS = "/api/v1/models/"
CODE = "import keras\n\ndef build_model(input_shape, num_classes):\n    return None\n"


@pytest.fixture
def saved_epoch(monkeypatch):
    from apps.mlmodels import snapshots

    monkeypatch.setattr(snapshots, "epochs", lambda model_id: [1])


def post_model(client, dataset, network=None, solver=None):
    body = {"dataset": dataset.pk, "name": "m", "network": network or LENET}
    body["solver"] = SOLVER if solver is None else solver
    return client.post(MODELS, body, format="json")


def png(size=(8, 8), fmt="PNG") -> bytes:
    out = io.BytesIO()
    Image.new("L", size, 128).save(out, format=fmt)
    return out.getvalue()


# --- params shown to a user -----------------------------------------------------------------
def test_a_shared_models_job_does_not_show_its_private_dataset(people, api_client, client):
    model = make_model(people, "public", dataset_visibility="private")
    dataset_id = model.dataset_id
    job_url = f"/api/v1/jobs/{model.job_id}/"

    owner = api_client.as_user(people.owner).get(job_url).json()["params"]
    assert owner["dataset"]["manifest"]["label_names"] == ["cat", "dog"]

    other = api_client.as_user(people.other)
    assert other.get(job_url).json()["params"]["dataset"] == {"id": dataset_id}
    [row] = [j for j in other.get("/api/v1/jobs/").json()["results"] if j["id"] == model.job_id]
    assert row["params"]["dataset"] == {"id": dataset_id}
    client.force_login(people.other)
    page = client.get(f"/jobs/{model.job_id}/").content.decode()
    assert "class_counts" not in page and "dog" not in page


# --- running custom code is a permission ---------------------------------------------------
def test_the_form_offers_custom_sources_only_with_the_permission(people, client):
    dataset = make_dataset(people, "private")
    client.force_login(people.owner)
    page = client.get("/models/new/").content.decode()
    assert 'value="custom"' not in page and 'value="upload"' not in page
    assert 'data-field="custom_code"' not in page and "permission to run custom code" in page
    from tests.mlmodels.test_pages import field_errors, form_data

    reply = client.post(
        "/models/new/", form_data(dataset, network_source="custom", custom_code=CODE)
    )
    assert "network_source" in field_errors(reply.content.decode())
    assert not TrainedModel.objects.exists()

    grant_custom_code(people.owner)
    page = client.get("/models/new/").content.decode()
    assert 'value="custom"' in page and 'data-field="custom_code"' in page


@pytest.mark.parametrize("network", [{"source": "custom", "code": CODE},
                                     {"source": "upload", "upload_key": "uploads/1/x/y"}])  # fmt: skip
def test_the_api_refuses_custom_sources_without_the_permission(people, api_client, network):
    reply = post_model(api_client.as_user(people.owner), make_dataset(people, "private"), network)
    assert reply.status_code == 400, reply.content
    assert reply.json() == {"network": [CUSTOM_CODE_REFUSED]}
    assert not TrainedModel.objects.exists()


def test_the_permission_comes_from_the_user_a_team_or_superuser(people, django_user_model):
    from apps.core.permissions import can_run_custom_code

    assert not any(can_run_custom_code(u) for u in (people.owner, people.staff, people.other))
    root = django_user_model.objects.create_superuser("root", password="pw-root")
    assert can_run_custom_code(root)
    assert can_run_custom_code(grant_custom_code(people.other))
    # A team that may: its members and admins may, not its viewers.
    Team.objects.filter(pk=people.team.pk).update(run_custom_code=True)
    who = ("owner", "team_member", "team_admin", "team_viewer", "staff")
    assert {w: can_run_custom_code(getattr(people, w)) for w in who} == {
        "owner": True, "team_member": True, "team_admin": True, "team_viewer": False,
        "staff": False,
    }  # fmt: skip


def test_a_model_whose_owner_lost_the_permission_is_neither_resumed_nor_cloned(
    people, api_client, client, saved_epoch
):
    grant_custom_code(people.owner)
    reply = post_model(api_client.as_user(people.owner), make_dataset(people, "public"),
                       {"source": "custom", "code": CODE})  # fmt: skip
    assert reply.status_code == 201, reply.content
    model = TrainedModel.objects.get()
    jobs.request_abort(model.job)

    people.owner.user_permissions.clear()
    people.owner.refresh_from_db()
    api = api_client.as_user(people.owner)
    reply = api.post(f"{MODELS}{model.pk}/resume/")
    assert reply.status_code == 403 and reply.json()["detail"] == CUSTOM_CODE_REFUSED
    reply = api.post(f"{MODELS}{model.pk}/clone/")
    assert reply.status_code == 400 and reply.json() == {"network": [CUSTOM_CODE_REFUSED]}
    reply = api.post(f"/api/v1/jobs/{model.job_id}/clone/")
    assert reply.status_code == 400 and reply.json()["detail"] == CUSTOM_CODE_REFUSED
    client.force_login(people.owner)
    reply = client.post(f"/models/{model.pk}/resume/", follow=True)
    assert "permission to run custom code" in reply.content.decode()
    assert TrainedModel.objects.count() == 1 and Job.objects.count() == 1


def test_an_uploaded_model_file_is_its_uploaders_only(people, api_client):
    """``POST /models/uploads/`` stores a file to name as ``network.upload_key``; it needs
    the permission, and the key works for its uploader only."""
    dataset = make_dataset(people, "public")
    file = io.BytesIO(b"a .keras file")
    file.name = "net.keras"
    api = api_client.as_user(people.owner)
    assert api.post(f"{MODELS}uploads/", {"file": file}, format="multipart").status_code == 403

    grant_custom_code(people.owner)
    file.seek(0)
    reply = api.post(f"{MODELS}uploads/", {"file": file}, format="multipart")
    assert reply.status_code == 201, reply.content
    stored = reply.json()
    try:
        assert stored["upload_key"].startswith(f"uploads/{people.owner.pk}/")
        assert (stored["name"], stored["size"]) == ("net.keras", 13)
        network = {"source": "upload", "upload_key": stored["upload_key"]}
        other = api_client.as_user(grant_custom_code(people.other))
        assert post_model(other, dataset, network).status_code == 400
        assert post_model(api_client.as_user(people.owner), dataset, network).status_code == 201
    finally:
        get_store().delete(stored["upload_key"])


# --- bad input is a 400 naming the field ---------------------------------------------------
@pytest.mark.parametrize("solver", ["fast", ["epochs", 3], 7])
def test_a_solver_that_is_no_object_is_a_400(people, api_client, solver):
    reply = post_model(
        api_client.as_user(people.owner), make_dataset(people, "private"), solver=solver
    )
    assert reply.status_code == 400, reply.content
    assert list(reply.json()) == ["solver"]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (png((64, 64)), "pixels allowed"),  # over the (lowered) decompression-bomb limit
        (png(fmt="GIF"), "supported format"),
        (png()[:60], "corrupt or truncated"),
    ],
)
def test_classify_inputs_have_the_limits_of_dataset_import(
    people, api_client, client, saved_epoch, monkeypatch, image, message
):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    model = make_model(people, "private")
    before = Job.objects.count()
    api = api_client.as_user(people.owner)
    reply = api.post(
        f"{MODELS}{model.pk}/classify/", {"image": io.BytesIO(image)}, format="multipart"
    )
    assert reply.status_code == 400, reply.content
    assert list(reply.json()) == ["image"]  # ours, or DRF's "Upload a valid image"
    client.force_login(people.owner)
    image_file = io.BytesIO(image)
    image_file.name = "x.png"
    reply = client.post(f"/models/{model.pk}/classify/", {"image": image_file})
    assert message in reply.content.decode()
    assert Job.objects.count() == before  # nothing submitted, nothing stored


def test_classifying_a_dataset_entry_needs_the_dataset(people, api_client, saved_epoch):
    model = make_model(people, "public", dataset_visibility="private")
    reply = api_client.as_user(people.other).post(f"{MODELS}{model.pk}/classify/", {"index": 0})
    assert reply.status_code == 400 and list(reply.json()) == ["index"]


# --- clone of other kinds ---------------------------------------------------------------------
def test_cloning_a_build_needs_the_uploads_to_be_the_callers_and_stored(people, api_client):
    key = uploads.store_bytes(b"zip bytes", "flowers.zip", people.owner)
    options = {"source": "archive", "archive": {"upload_key": key, "name": "flowers.zip"}}
    dataset = Dataset.objects.create(owner=people.owner, name="flowers", type="image-classification",
                                     visibility="public", options=options)  # fmt: skip
    build = jobs.submit(owner=people.owner, kind="dataset.build", visibility="public",
                        params={"dataset_id": dataset.pk, "type": "image-classification",
                                "options": options})  # fmt: skip
    try:
        reply = api_client.as_user(people.other).post(f"/api/v1/jobs/{build.pk}/clone/")
        refused = reply.json()
        assert reply.status_code == 400 and "not available" in refused["detail"]
        reply = api_client.as_user(people.owner).post(f"/api/v1/jobs/{build.pk}/clone/")
        assert reply.status_code == 201, reply.content
        clone = Dataset.objects.get(job_id=reply.json()["id"])
        assert (
            clone.pk != dataset.pk
            and clone.owner == people.owner
            and clone.name == "flowers (clone)"
        )
        assert reply.json()["params"]["dataset_id"] == clone.pk
    finally:
        get_store().delete(key)
    reply = api_client.as_user(people.owner).post(f"/api/v1/jobs/{build.pk}/clone/")
    assert reply.status_code == 400 and reply.json() == refused  # gone reads like not yours


def test_a_job_of_a_kind_users_cannot_submit_is_not_cloned(people, api_client):
    job = Job.objects.create(owner=people.owner, name="gone", kind="no.longer.installed")
    reply = api_client.as_user(people.owner).post(f"/api/v1/jobs/{job.pk}/clone/")
    assert reply.status_code == 400 and "not installed" in reply.json()["detail"]


# --- resume, delete and abort racing on one model ------------------------------------------
def race(*calls):
    """Run the calls at once, each in a thread with its own database connection."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def active_jobs(model_id) -> int:
    return Job.objects.filter(
        kind="model.train", params__model_id=model_id, status__in=ACTIVE_STATUSES
    ).count()


def token_client(user):
    """An API client of its own (one per thread), authenticated as ``user``."""
    from rest_framework.test import APIClient

    from apps.accounts.models import ApiToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(user, 'race')[1]}")
    return client


@pytest.mark.parametrize("attempt", range(3))
def test_racing_resumes_start_one_job(transactional_db, people, saved_epoch, attempt):
    with no_messages():
        model = make_model(people, "team")
        clients = [token_client(u) for u in (people.owner, people.team_member, people.team_admin)]
        url = f"{MODELS}{model.pk}/resume/"
        codes = race(*[lambda c=c: c.post(url).status_code for c in clients])
    assert sorted(codes) == [201, 409, 409], codes
    assert active_jobs(model.pk) == 1


@pytest.mark.parametrize("attempt", range(3))
def test_resume_racing_delete_never_fails(transactional_db, people, saved_epoch, attempt):
    with no_messages():
        model = make_model(people, "private")
        first, second = token_client(people.owner), token_client(people.owner)
        resumed, deleted = race(
            lambda: first.post(f"{MODELS}{model.pk}/resume/").status_code,
            lambda: second.delete(f"{MODELS}{model.pk}/").status_code,
        )
    if deleted == 204:  # delete won: the resume found no model, or a conflict
        assert resumed in (404, 409) and not TrainedModel.objects.filter(pk=model.pk).exists()
        assert active_jobs(model.pk) == 0
    else:  # resume won: the model is training, so it is not deleted
        assert (resumed, deleted) == (201, 409)
        assert active_jobs(model.pk) == 1


def test_delete_abort_resume_in_sequence(transactional_db, people, saved_epoch):
    with no_messages():
        model = make_model(people, "private")
        api = token_client(people.owner)
        job = api.post(f"{MODELS}{model.pk}/resume/").json()["id"]
        assert api.post(f"{MODELS}{model.pk}/resume/").status_code == 409  # still training
        reply = api.delete(f"{MODELS}{model.pk}/")
        assert reply.status_code == 409 and "abort it first" in reply.json()["detail"]
        assert api.delete(f"/api/v1/jobs/{job}/").status_code == 409
        assert api.post(f"/api/v1/jobs/{job}/abort/").status_code == 200
        assert api.post(f"/api/v1/jobs/{job}/abort/").status_code == 409  # already aborted
        assert api.delete(f"{MODELS}{model.pk}/").status_code == 204
        assert api.post(f"{MODELS}{model.pk}/resume/").status_code == 404
        assert api.post(f"/api/v1/jobs/{job}/abort/").status_code == 404
        assert not Job.objects.filter(pk=job).exists()


def test_a_queued_job_whose_owner_lost_the_permission_fails_at_claim(people, api_client):
    """Rights are checked again when a worker claims the job, before anything runs."""
    from apps.jobs import runner

    grant_custom_code(people.owner)
    with no_messages():
        reply = post_model(api_client.as_user(people.owner), make_dataset(people, "public"),
                           {"source": "custom", "code": CODE})  # fmt: skip
    assert reply.status_code == 201, reply.content
    model = TrainedModel.objects.get()
    people.owner.user_permissions.clear()

    runner.execute(model.job_id)

    job = Job.objects.get(pk=model.job_id)
    assert job.status == "error" and "may no longer run custom code" in job.error
    assert job.attempts == 1
    model.refresh_from_db()
    assert model.status == "error"
