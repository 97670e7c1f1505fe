"""Quotas: a submission over a user's or team's limit answers 429 saying what, the limit,
the use and when it frees up; a parameter over its limit answers 400 naming the field.
Every path that creates a job goes through the same check (``apps.jobs.services.submit``).
"""

import pytest
from django.utils import timezone

from apps.datasets.forms import DatasetForm
from apps.datasets.models import Dataset
from apps.jobs.models import Job
from apps.mlmodels.models import TrainedModel
from apps.usage.models import Quota
from apps.usage.quotas import ParameterLimitExceeded, next_month_start
from tests.jobs.helpers import check_params, submit_check, wait_status
from tests.mlmodels.test_errors import ready_dataset
from tests.mlmodels.test_pages import NEW, form_data

JOBS = "/api/v1/jobs/"


def post_check(client, **params):
    body = {"kind": "worker.check", "params": check_params(**params)}
    return client.post(JOBS, body, format="json")


@pytest.fixture
def quota_defaults(settings):
    """The settings' defaults, changed per test (``DIGITS_QUOTA_*``)."""
    settings.DIGITS_QUOTA = {**settings.DIGITS_QUOTA}
    settings.DIGITS_QUOTA_TEAM = {**settings.DIGITS_QUOTA_TEAM}
    return settings


def test_concurrent_jobs_over_the_default_answers_429(api_client, people, quota_defaults):
    quota_defaults.DIGITS_QUOTA["concurrent_jobs"] = 2
    first = submit_check(people.owner, send=False)
    submit_check(people.owner, send=False)
    # The first one runs and expects to end in two minutes: that is when a slot frees up.
    Job.objects.filter(pk=first.pk).update(status="running", eta_seconds=120)
    client = api_client.as_user(people.owner)

    response = post_check(client)

    assert response.status_code == 429, response.content
    body = response.json()
    assert (body["quota"], body["scope"], body["limit"], body["used"]) == (
        "concurrent_jobs", "user", 2, 2,
    )  # fmt: skip
    assert "2 of 2 jobs are queued or running" in body["detail"]
    assert 110 <= int(response["Retry-After"]) <= 121
    assert body["retry_after"] == int(response["Retry-After"])
    assert body["frees_at"] is not None
    assert Job.objects.filter(owner=people.owner).count() == 2  # nothing created
    # Another user is not held back by olivia's jobs.
    assert post_check(api_client.as_user(people.other)).status_code == 201


def test_a_users_override_replaces_the_default(api_client, people, quota_defaults):
    quota_defaults.DIGITS_QUOTA["concurrent_jobs"] = 1
    Quota.objects.create(user=people.owner, concurrent_jobs=3)
    for _ in range(3):
        assert post_check(api_client.as_user(people.owner)).status_code == 201
    response = post_check(api_client.as_user(people.owner))
    assert response.status_code == 429
    assert (response.json()["limit"], response.json()["used"]) == (3, 3)
    assert "Retry-After" not in response  # no running job tells when it ends


def test_concurrent_gpus_count_the_gpus_jobs_ask_for(api_client, people):
    Quota.objects.create(user=people.owner, concurrent_gpus=1)
    client = api_client.as_user(people.owner)
    assert post_check(client, queue="gpu").status_code == 201  # one GPU

    refused = post_check(client, queue="gpu")
    cpu_only = post_check(client)

    assert refused.status_code == 429
    body = refused.json()
    assert (body["quota"], body["limit"], body["used"]) == ("concurrent_gpus", 1, 1)
    assert "hold 1 of 1 GPUs and this job asks for 1" in body["detail"]
    assert cpu_only.status_code == 201  # a job without GPUs is not held back


def test_a_team_quota_counts_the_jobs_shared_with_the_team(api_client, people):
    Quota.objects.create(team=people.team, concurrent_jobs=1)
    member = api_client.as_user(people.team_member)
    shared = {"kind": "worker.check", "params": check_params(), "team": "vision",
              "visibility": "team"}  # fmt: skip
    assert member.post(JOBS, shared, format="json").status_code == 201

    refused = api_client.as_user(people.owner).post(JOBS, shared, format="json")
    private = post_check(api_client.as_user(people.owner))

    assert refused.status_code == 429
    assert (refused.json()["quota"], refused.json()["scope"]) == ("concurrent_jobs", "team vision")
    assert private.status_code == 201


def test_gpu_hours_and_storage_refuse_after_a_real_gpu_job(api_client, people, start_worker):
    """A job on the GPU queue runs (a worker of that queue on this CPU machine); its
    GPU-seconds use up a small monthly quota and its artifacts a small storage quota."""
    Quota.objects.create(user=people.owner, gpu_hours_per_month=0.0001)  # 0.36 GPU-seconds
    start_worker(queues=("gpu",))
    client = api_client.as_user(people.owner)
    job = Job.objects.get(
        pk=post_check(client, queue="gpu", steps=4, step_seconds=0.2).json()["id"]
    )

    assert wait_status(job, "done", "error", timeout=60).status == "done"

    refused = post_check(client, queue="gpu")
    assert refused.status_code == 429
    body = refused.json()
    assert body["quota"] == "gpu_hours_per_month" and body["limit"] == 0.0001
    assert body["used"] >= 0.0002  # at least 0.8 s on one GPU
    wait = (next_month_start() - timezone.now()).total_seconds()
    assert abs(int(refused["Retry-After"]) - wait) < 5
    assert post_check(client).status_code == 201  # CPU jobs use no GPU-hours

    Quota.objects.filter(user=people.owner).update(storage_bytes=job.artifacts.get().size)
    refused = post_check(client)
    assert refused.status_code == 429
    body = refused.json()
    assert (body["quota"], body["used"]) == ("storage_bytes", job.artifacts.get().size)
    assert "delete jobs, datasets or models" in body["detail"]


def test_the_worker_check_the_probe_sent_is_refused_naming_the_field(api_client, people):
    response = post_check(api_client.as_user(people.owner), steps=100_000)
    assert response.status_code == 400
    assert list(response.json()) == ["params"]
    [message] = response.json()["params"]["steps"]
    assert "steps may be at most 1000 (user limit); this job asks for 100000" in message
    assert not Job.objects.exists()


def test_a_build_with_too_many_processes_is_refused_naming_the_field(api_client, people):
    body = {"type": "test-squares", "name": "greedy", "processes": 64,
            "options": {"count": 10, "size": 8, "encoding": "png"}}  # fmt: skip
    response = api_client.as_user(people.owner).post("/api/v1/datasets/", body, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["processes"]
    assert "at most 16" in response.json()["processes"][0]
    assert not Dataset.objects.exists() and not Job.objects.exists()  # rolled back whole


def test_a_team_parameter_limit_applies_to_the_teams_jobs(api_client, people):
    Quota.objects.create(team=people.team, max_steps=10)
    client = api_client.as_user(people.owner)
    shared = {"kind": "worker.check", "params": check_params(steps=11), "team": "vision",
              "visibility": "team"}  # fmt: skip
    response = client.post(JOBS, shared, format="json")
    assert response.status_code == 400
    assert "(team vision limit)" in response.json()["params"]["steps"][0]
    assert post_check(client, steps=11).status_code == 201  # not shared: the user's limit


def test_the_page_form_shows_the_refusal(client, people, quota_defaults):
    quota_defaults.DIGITS_QUOTA["concurrent_jobs"] = 1
    submit_check(people.owner, send=False)
    client.force_login(people.owner)
    form = {"name": "check", "queue": "default", "steps": 5, "step_seconds": 0.1,
            "matrix_size": 32, "visibility": "private"}  # fmt: skip

    over_quota = client.post("/jobs/worker-check/new/", form)
    quota_defaults.DIGITS_QUOTA["concurrent_jobs"] = None
    too_many_steps = client.post("/jobs/worker-check/new/", {**form, "steps": 5000})

    assert over_quota.status_code == 200
    assert (
        "Over the user quota of concurrent jobs" in over_quota.context["form"].non_field_errors()[0]
    )
    assert too_many_steps.status_code == 200
    assert "at most 1000" in too_many_steps.context["form"].errors["steps"][0]
    assert Job.objects.count() == 1


def test_a_clone_over_quota_is_a_message_not_a_server_error(client, people, quota_defaults):
    job = submit_check(people.owner, send=False)
    quota_defaults.DIGITS_QUOTA["concurrent_jobs"] = 1
    client.force_login(people.owner)
    detail = f"/jobs/{job.pk}/"
    response = client.post(f"/jobs/{job.pk}/clone/", HTTP_REFERER=f"http://testserver{detail}")
    assert response.status_code == 302 and response["Location"].endswith(detail)
    page = client.get(detail)
    assert "Over the user quota of concurrent jobs" in page.content.decode()
    assert Job.objects.count() == 1


def test_training_epochs_over_the_limit_name_the_solver_field(api_client, client, people):
    Quota.objects.create(user=people.owner, max_epochs=5)
    dataset = ready_dataset(people.owner)
    body = {"dataset": dataset.pk, "name": "long", "network": {}, "solver": {"epochs": 6}}
    response = api_client.as_user(people.owner).post("/api/v1/models/", body, format="json")
    client.force_login(people.owner)
    page = client.post(NEW, form_data(dataset, epochs="6"))

    assert response.status_code == 400, response.content
    assert "epochs may be at most 5" in response.json()["solver"]["epochs"][0]
    assert page.status_code == 200
    assert "epochs may be at most 5" in page.context["form"].errors["epochs"][0]
    assert not TrainedModel.objects.exists() and not Job.objects.exists()


def test_a_sweep_over_the_quota_starts_none_of_its_models(api_client, people):
    Quota.objects.create(user=people.owner, concurrent_jobs=2)
    dataset = ready_dataset(people.owner)
    body = {"dataset": dataset.pk, "name": "sweep", "network": {},
            "solver": {"batch_size": [8, 16, 32]}}  # fmt: skip
    response = api_client.as_user(people.owner).post("/api/v1/models/", body, format="json")
    assert response.status_code == 429, response.content
    assert response.json()["quota"] == "concurrent_jobs"
    assert not TrainedModel.objects.exists() and not Job.objects.exists()


def test_the_new_dataset_page_shows_the_processes_limit_on_its_field(client, people):
    client.force_login(people.owner)
    response = client.post(
        "/datasets/new/test-squares/",
        {"data-count": "10", "data-size": "8", "data-encoding": "png", "dataset-name": "greedy",
         "dataset-visibility": "private", "dataset-max_error_percent": "10",
         "dataset-processes": "64"},
    )  # fmt: skip
    assert response.status_code == 200
    form = next(c["form"] for c in response.context if isinstance(c.get("form"), DatasetForm))
    assert "processes may be at most 16" in form.errors["processes"][0]
    assert not Dataset.objects.exists() and not Job.objects.exists()


def test_image_size_limits_apply_to_a_builds_options(people):
    from apps.jobs import services

    Quota.objects.create(user=people.owner, max_image_side=512)
    params = {"dataset_id": 1, "type": "image-classification", "processes": 1,
              "options": {"width": 1024, "height": 256}}  # fmt: skip
    with pytest.raises(ParameterLimitExceeded) as refused:
        services.submit(owner=people.owner, kind="dataset.build", params=params)
    assert refused.value.field == "options.width"
    assert refused.value.detail == {"options": {"width": [refused.value.message]}}
    assert "width may be at most 512 (user limit); this job asks for 1024" in refused.value.message
