"""HTML pages: the admin, the worker check form, and assets served from our own static files."""

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.utils import timezone

from apps.accounts.models import ApiToken, Team
from apps.datasets.models import Dataset
from apps.jobs import services
from apps.jobs.kinds import get_kind
from apps.jobs.models import Beat, Job, JobArtifact, JobSeries
from apps.mlmodels.models import TrainedModel

APP_LABELS = ("accounts", "jobs", "datasets", "mlmodels")


# --- admin -----------------------------------------------------------------------------------
# model -> a search and a filter that match the rows of ``admin_rows``
ADMIN_QUERIES = {
    "accounts.team": "q=vis",
    "accounts.membership": "q=adam&role__exact=admin",
    "accounts.apitoken": "q=laptop&created_at__gte=2000-01-01+00%3A00%3A00%2B00%3A00",
    "jobs.job": "q=check&status__exact=queued&visibility__exact=team",
    "jobs.jobevent": "q=check&type__exact=status",
    "jobs.jobartifact": "q=report",
    "jobs.beat": "q=reaper&role__exact=reaper",
    "jobs.jobseries": "q=nightly",
    "datasets.dataset": "q=digits&status__exact=ready&visibility__exact=public",
    "mlmodels.trainedmodel": "q=lenet&status__exact=training&visibility__exact=private",
}


def test_every_model_is_in_the_admin():
    models = {
        m._meta.label_lower: m
        for label in APP_LABELS
        for m in apps.get_app_config(label).get_models()
    }
    assert set(models) == set(ADMIN_QUERIES)
    assert [name for name, model in models.items() if not admin.site.is_registered(model)] == []


@pytest.fixture
def admin_rows(people):
    ApiToken.issue(people.owner, "laptop")
    job = services.submit(
        owner=people.owner, kind="worker.check", params=get_kind("worker.check").validate_params({}, None),
        name="nightly check", team=people.team, visibility="team",
    )  # fmt: skip
    JobArtifact.objects.create(
        job=job, name="report.json", key=f"jobs/{job.pk}/report.json", size=12
    )
    Beat.objects.create(name="reaper@host:1", role="reaper", at=timezone.now())
    JobSeries.objects.create(job=job, points=2000, last_seq=1, data=b"")
    dataset = Dataset.objects.create(
        owner=people.owner, name="digits", type="images", status="ready", visibility="public"
    )
    TrainedModel.objects.create(owner=people.team_member, name="lenet", dataset=dataset)
    return people


@pytest.mark.parametrize("label", ADMIN_QUERIES)
def test_admin_changelist_search_filter_and_change_page(admin_rows, admin_client, label):
    model = apps.get_model(label)
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"

    listing = admin_client.get(base)
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == model.objects.count() > 0

    filtered = admin_client.get(f"{base}?{ADMIN_QUERIES[label]}")
    assert filtered.status_code == 200  # an unknown filter would redirect with ?e=1
    assert filtered.context["cl"].result_count >= 1

    obj = model.objects.first()
    assert admin_client.get(f"{base}{obj.pk}/change/").status_code == 200


def test_admin_needs_staff(people, client):
    client.force_login(people.other)
    response = client.get("/admin/jobs/job/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# --- the worker check form -------------------------------------------------------------------
VALID_FORM = {
    "name": "check", "queue": "default", "steps": "3", "step_seconds": "0.1",
    "matrix_size": "16", "visibility": "private", "team": "",
}  # fmt: skip


def test_worker_check_form_submits_a_job(people, client):
    client.force_login(people.owner)
    assert client.get("/jobs/worker-check/new/").status_code == 200

    response = client.post(
        "/jobs/worker-check/new/", {**VALID_FORM, "visibility": "team", "team": people.team.pk}
    )

    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert (job.name, job.owner, job.team, job.visibility) == (
        "check",
        people.owner,
        people.team,
        "team",
    )
    assert job.params == {
        "queue": "default", "steps": 3, "step_seconds": 0.1, "matrix_size": 16,
        "use_tensorflow": False, "fail_at_step": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": ""}, "name"),
        ({"steps": "0"}, "steps"),
        ({"steps": "many"}, "steps"),
        ({"steps": "1000000"}, "steps"),
        ({"matrix_size": "4"}, "matrix_size"),
        ({"step_seconds": "-1"}, "step_seconds"),
        ({"queue": "tpu"}, "queue"),
        ({"visibility": "team"}, "team"),
        ({"visibility": "world"}, "visibility"),
        ({"visibility": "team", "team": "audio"}, "team"),  # not a member of it
    ],
)
def test_worker_check_form_errors_name_the_field(people, client, change, field):
    audio = Team.objects.create(name="Audio", slug="audio")
    data = {**VALID_FORM, **change}
    if data["team"] == "audio":
        data["team"] = audio.pk
    client.force_login(people.owner)

    response = client.post("/jobs/worker-check/new/", data)

    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == [field]
    # The message is shown under its field.
    page = response.content.decode()
    block = page[page.index(f'for="id_{field}"') :].split('<div class="mb-3">')[0]
    assert 'class="invalid-feedback d-block"' in block
    assert not Job.objects.exists()


def test_viewer_cannot_share_with_the_team(people, client):
    client.force_login(people.team_viewer)
    data = {**VALID_FORM, "visibility": "team", "team": people.team.pk}

    response = client.post("/jobs/worker-check/new/", data)

    assert list(response.context["form"].errors) == ["team"]
    assert not Job.objects.exists()


# --- static assets ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url", ["/", "/accounts/", "/accounts/login/", "/jobs/worker-check/new/", "/jobs/{job}/"]
)
def test_pages_load_assets_from_our_static_files(people, client, url):
    job = services.submit(
        owner=people.owner,
        kind="worker.check",
        params=get_kind("worker.check").validate_params({}, None),
    )
    if url != "/accounts/login/":
        client.force_login(people.owner)

    response = client.get(url.format(job=job.pk))

    assert response.status_code == 200
    page = response.content.decode()
    assets = re.findall(r'<script[^>]+src="([^"]+)"', page) + re.findall(
        r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', page
    )
    assert assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset
