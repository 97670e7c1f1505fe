"""The job REST API: submit, clone and delete (abort is in test_abort.py, events in test_events.py)."""

import pytest

from apps.core.storage import get_store
from apps.jobs import services
from apps.jobs.models import Job, JobEvent
from tests.jobs.helpers import check_params, keys, no_messages, row, staging_root, submit_check

pytestmark = pytest.mark.usefixtures("transactional_db")  # on_commit work (sends, deletes) runs


@pytest.fixture
def sent():
    """Job ids whose message would have gone to the broker (nothing is sent)."""
    with no_messages() as enqueue:
        yield lambda: [call.args[0].pk for call in enqueue.call_args_list]


def finished_job(owner, *, artifacts=("report.json", "model/weights.bin")) -> Job:
    """A job that ran to done in this process, with published artifacts."""
    job = submit_check(owner, send=False)
    job = services.claim(job.pk, "test-worker")
    for name in artifacts:
        get_store().put(job.staging_prefix + name, b"bytes of " + name.encode())
    services.complete(job, {"ok": True})
    return row(job)


def test_submit_validates_and_enqueues_once_committed(people, api_client, sent):
    client = api_client.as_user(people.owner)

    response = client.post(
        "/api/v1/jobs/",
        {"kind": "worker.check", "params": {"steps": 3, "queue": "gpu"}},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["queue"], body["owner"]) == (
        "queued",
        "gpu",
        people.owner.username,
    )
    assert body["params"] == check_params(steps=3, queue="gpu", step_seconds=0.5, matrix_size=256)
    assert sent() == [body["id"]]
    bad = client.post(
        "/api/v1/jobs/", {"kind": "worker.check", "params": {"steps": 0}}, format="json"
    )
    assert bad.status_code == 400 and "steps" in bad.json()["params"]
    unknown = client.post("/api/v1/jobs/", {"kind": "no.such.kind"}, format="json")
    assert unknown.status_code == 400 and "kind" in unknown.json()
    assert sent() == [body["id"]]


def test_clone_creates_a_new_queued_job_with_the_same_kind_and_params(people, api_client, sent):
    original = finished_job(people.owner)
    client = api_client.as_user(people.owner)

    response = client.post(f"/api/v1/jobs/{original.pk}/clone/")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] != original.pk
    assert body["cloned_from"] == original.pk
    assert (body["kind"], body["params"], body["name"]) == (
        original.kind,
        original.params,
        original.name,
    )
    assert (body["status"], body["attempts"], body["progress"]) == ("queued", 0, 0.0)
    clone = Job.objects.get(pk=body["id"])
    assert not clone.artifacts.exists() and clone.result == {}
    assert sent() == [clone.pk]
    assert row(original).status == "done"  # the original is untouched


def test_clone_by_someone_else_is_theirs(people, api_client, sent):
    with no_messages():
        shared = services.submit(
            owner=people.owner, kind="worker.check", params=check_params(),
            team=people.team, visibility="team",
        )  # fmt: skip

    # A team viewer may not share with the team: the clone is theirs, private.
    body = api_client.as_user(people.team_viewer).post(f"/api/v1/jobs/{shared.pk}/clone/").json()
    assert (body["owner"], body["team"], body["visibility"]) == (
        people.team_viewer.username,
        None,
        "private",
    )
    # A stranger cannot see the job, so cannot clone it.
    assert (
        api_client.as_user(people.other).post(f"/api/v1/jobs/{shared.pk}/clone/").status_code == 404
    )


def test_delete_finished_job_removes_its_artifacts_and_events(people, api_client):
    job = finished_job(people.owner)
    neighbour = finished_job(people.owner)  # another job's files stay
    assert keys(job.artifact_prefix) == [
        job.artifact_prefix + "model/weights.bin",
        job.artifact_prefix + "report.json",
    ]
    get_store().put(f"{staging_root(job)}attempt-9/left.bin", b"x")  # an old attempt's leftovers
    client = api_client.as_user(people.owner)

    response = client.delete(f"/api/v1/jobs/{job.pk}/")

    assert response.status_code == 204
    assert not Job.objects.filter(pk=job.pk).exists()
    assert not JobEvent.objects.filter(job_id=job.pk).exists()
    assert keys(job.artifact_prefix) == []
    assert keys(staging_root(job)) == []
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/api/v1/jobs/{job.pk}/events/").status_code == 404
    assert len(keys(neighbour.artifact_prefix)) == 2
    assert row(neighbour).events.exists()


@pytest.mark.parametrize("state", ["queued", "running"])
def test_delete_active_job_is_a_conflict(people, api_client, state):
    job = submit_check(people.owner, send=False)
    if state == "running":
        services.claim(job.pk, "test-worker")

    response = api_client.as_user(people.owner).delete(f"/api/v1/jobs/{job.pk}/")

    assert response.status_code == 409
    assert "abort it first" in response.json()["detail"]
    assert row(job).status == state


def test_delete_needs_delete_permission(people, api_client):
    with no_messages():
        shared = services.submit(
            owner=people.owner, kind="worker.check", params=check_params(),
            team=people.team, visibility="team",
        )  # fmt: skip
    services.mark_aborted(row(shared))

    assert (
        api_client.as_user(people.team_member).delete(f"/api/v1/jobs/{shared.pk}/").status_code
        == 403
    )
    assert api_client.as_user(people.other).delete(f"/api/v1/jobs/{shared.pk}/").status_code == 404
    assert Job.objects.filter(pk=shared.pk).exists()
    assert (
        api_client.as_user(people.team_admin).delete(f"/api/v1/jobs/{shared.pk}/").status_code
        == 204
    )


def test_job_detail_lists_published_artifacts(people, api_client):
    job = finished_job(people.owner)
    body = api_client.as_user(people.owner).get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["status"] == "done" and body["progress"] == 1.0 and body["result"] == {"ok": True}
    assert [(a["name"], a["size"]) for a in body["artifacts"]] == [
        ("model/weights.bin", len(b"bytes of model/weights.bin")),
        ("report.json", len(b"bytes of report.json")),
    ]
