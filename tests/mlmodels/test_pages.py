"""The new-model page: the form renders, shows each error next to its field, and previews
the learning-rate curve of every policy."""

import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import Job
from apps.mlmodels.lr_policies import POLICIES, learning_rate
from apps.mlmodels.models import TrainedModel
from tests.conftest import grant_custom_code
from tests.mlmodels.helpers import digits, png
from tests.mlmodels.test_errors import ready_dataset

NEW = "/models/new/"
PREVIEW = "/models/lr-preview/"


@pytest.fixture
def owner_client(client, people):
    client.force_login(grant_custom_code(people.owner))
    return client


def form_data(dataset, **changes) -> dict:
    """A complete, valid submission of the form (as the browser sends it), with changes."""
    data = {
        "dataset": dataset.pk, "name": "from the page", "description": "", "visibility": "private",
        "network_source": "standard", "standard_network": "lenet", "epochs": 5,
        "batch_size": "32", "base_lr": "0.01", "policy": "step", "step_size": 33,
        "step_values": "50", "gamma": 0.1, "power": 1, "optimizer": "sgd", "momentum": 0.9,
        "weight_decay": 0, "seed": "", "shuffle": "on", "val_interval": 1, "snapshot_interval": 1,
        "mean_subtraction": "image", "rotation_degrees": 0, "crop_percent": 0, "noise_stddev": 0,
        "contrast": 0, "hue": 0, "gpu_mode": "next", "gpu_ids": "", "gpu_count": 1,
    }  # fmt: skip
    data.update(changes)
    return data


def field_errors(page: str) -> dict[str, list[str]]:
    """``{field name: [error, …]}`` as rendered inside each field's ``data-field`` block."""
    found = {}
    for name, block in re.findall(r'data-field="([^"]+)"[^>]*>(.*?)\n</div>', page, re.S):
        errors = re.findall(r'<div class="invalid-feedback d-block">(.*?)</div>', block, re.S)
        if errors:
            found[name] = [html.unescape(e) for e in errors]
    return found


def test_the_form_renders_with_the_ready_datasets_and_the_preview(owner_client, people):
    ready = ready_dataset(people.owner, "ready digits")
    ready_dataset(people.owner, "still building", status="building")
    ready_dataset(people.other, "not mine")
    page = owner_client.get(NEW, {"dataset": ready.pk})
    assert page.status_code == 200
    text = page.content.decode()
    assert f'<option value="{ready.pk}" selected>ready digits</option>' in text
    assert "still building" not in text and "not mine" not in text
    for name in ("name", "network_source", "standard_network", "custom_code", "epochs",
                 "batch_size", "base_lr", "policy", "gamma", "optimizer", "seed",
                 "snapshot_interval", "mean_subtraction", "gpu_mode"):  # fmt: skip
        assert f'data-field="{name}"' in text, name
    assert 'id="lr-preview"' in text and f'data-url="{PREVIEW}"' in text
    assert field_errors(text) == {}


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    reply = client.get(NEW)
    assert reply.status_code == 302 and "/accounts/login/" in reply["Location"]
    assert client.get(PREVIEW).status_code == 302


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"name": "", "epochs": 0}, {"name": "required", "epochs": "greater than or equal to 1"}),
        ({"batch_size": "16,abc"}, {"batch_size": "numbers separated by commas"}),
        ({"base_lr": "-0.1"}, {"base_lr": "positive"}),
        ({"policy": "exp", "gamma": 1.5}, {"gamma": "(0, 1]"}),
        ({"momentum": 1.5}, {"momentum": "0.999"}),
        ({"network_source": "custom", "custom_code": ""}, {"custom_code": "build_model"}),
        ({"visibility": "team"}, {"team": "Choose the team"}),
    ],
)
def test_errors_are_shown_next_to_their_fields(owner_client, people, changes, expected):
    dataset = ready_dataset(people.owner)
    reply = owner_client.post(NEW, form_data(dataset, **changes))
    assert reply.status_code == 200  # the form again, not a redirect
    errors = field_errors(reply.content.decode())
    assert set(errors) == set(expected), errors
    for field, text in expected.items():
        assert any(text in error for error in errors[field]), (field, errors[field])
    assert not TrainedModel.objects.exists() and not Job.objects.exists()


def test_a_valid_form_starts_training_and_a_sweep_starts_several(owner_client, people):
    dataset = ready_dataset(people.owner)
    reply = owner_client.post(NEW, form_data(dataset, seed="7", optimizer="adam"))
    model = TrainedModel.objects.get()
    assert reply.status_code == 302 and reply["Location"] == f"/models/{model.pk}/"
    assert model.solver["seed"] == 7 and model.solver["optimizer"] == "adam"
    assert model.job.kind == "model.train" and model.job.status == "queued"
    page = owner_client.get(reply["Location"]).content.decode()
    assert 'id="loss-chart"' in page and f'data-job="{model.job.pk}"' in page

    reply = owner_client.post(NEW, form_data(dataset, name="sweep", base_lr="0.1, 0.01"))
    assert reply.status_code == 302 and reply["Location"] == "/"
    sweep = TrainedModel.objects.exclude(pk=model.pk)
    assert sorted(m.solver["base_lr"] for m in sweep) == [0.01, 0.1]
    assert len({m.sweep for m in sweep}) == 1


@pytest.mark.parametrize("policy", POLICIES)
def test_the_preview_returns_the_curve_of_each_policy(owner_client, db, policy):
    params = {"policy": policy, "epochs": 10, "base_lr": "0.1", "gamma": 0.5, "power": 2,
              "step_size": 25, "step_values": "30,60"}  # fmt: skip
    reply = owner_client.get(PREVIEW, params)
    assert reply.status_code == 200, reply.content
    data = reply.json()
    assert len(data["epochs"]) == len(data["lr"]) == 100
    assert data["epochs"][0] == 0 and data["epochs"][-1] == pytest.approx(9.99)
    # The preview is the documented formula, sampled over the run (100 iterations an epoch).
    for epoch, lr in zip(data["epochs"], data["lr"], strict=True):
        expected = learning_rate(
            policy, round(epoch * 100), base_lr=0.1, max_iter=1000, gamma=0.5, power=2.0,
            step_size=25.0, step_values=(30.0, 60.0),
        )  # fmt: skip
        assert lr == pytest.approx(expected, rel=1e-9, abs=1e-15)
    shape = {
        "fixed": lambda lrs: len(set(lrs)) == 1,
        "step": lambda lrs: lrs == sorted(lrs, reverse=True) and len(set(lrs)) == 4,
        "multistep": lambda lrs: lrs == sorted(lrs, reverse=True) and len(set(lrs)) == 3,
        "exp": lambda lrs: lrs == sorted(lrs, reverse=True) and lrs[-1] < 1e-12,
        "inv": lambda lrs: lrs == sorted(lrs, reverse=True),
        "poly": lambda lrs: lrs == sorted(lrs, reverse=True) and lrs[-1] < 1e-5,
        "sigmoid": lambda lrs: lrs == sorted(lrs) and lrs[0] < 0.01 < 0.09 < lrs[-1],
    }[policy]
    assert shape(data["lr"]), data["lr"]


def test_the_preview_refuses_bad_values_with_a_message(owner_client, db):
    reply = owner_client.get(PREVIEW, {"policy": "triangular"})
    assert reply.status_code == 400 and "triangular" in reply.json()["error"]
    assert owner_client.get(PREVIEW, {"base_lr": "fast"}).status_code == 400


def test_model_page_actions_guard_the_job_state(owner_client, people, api_client):
    from apps.jobs import services as jobs

    dataset = ready_dataset(people.owner)
    owner_client.post(NEW, form_data(dataset, name="guarded"))
    model = TrainedModel.objects.get()
    page = f"/models/{model.pk}/"
    api = api_client.as_user(people.owner)

    # While its job is queued or running, the model cannot be resumed or deleted.
    reply = owner_client.post(page + "resume/", follow=True)
    assert "still training" in reply.content.decode()
    reply = owner_client.post(page + "delete/", follow=True)
    assert "abort it first" in html.unescape(reply.content.decode())
    assert api.delete(f"/api/v1/models/{model.pk}/").status_code == 409
    # Nothing to download or classify with before the first snapshot.
    assert owner_client.get(page + "download/").status_code == 404
    assert api.get(f"/api/v1/models/{model.pk}/download/").status_code == 404
    classify = owner_client.get(page + "classify/")
    assert classify.status_code == 200 and 'name="image"' in classify.content.decode()
    reply = owner_client.post(page + "classify/", {"index": ""})
    assert "Upload an image or give the number" in reply.content.decode()
    image = SimpleUploadedFile("digit.png", png(digits()[0][0]), content_type="image/png")
    reply = owner_client.post(page + "classify/", {"image": image})
    assert "no snapshot yet" in reply.content.decode()

    # Aborted before it ran: no snapshot, so Resume explains that a clone starts again.
    jobs.request_abort(model.job)
    model.refresh_from_db()
    assert model.status == "aborted" and "Aborted" in owner_client.get(page).content.decode()
    reply = api.post(f"/api/v1/models/{model.pk}/resume/")
    assert reply.status_code == 409 and "no snapshot" in reply.json()["detail"]
    reply = owner_client.post(page + "resume/", follow=True)
    assert "clone it to start again" in reply.content.decode()
    reply = owner_client.post(page + "clone/")
    clone = TrainedModel.objects.exclude(pk=model.pk).get()
    assert reply["Location"] == f"/models/{clone.pk}/" and clone.name == "guarded (clone)"
    assert clone.solver == model.solver and clone.job.status == "queued"

    # Another user sees neither the page nor the API object.
    outsider = api_client.as_user(people.other)
    assert outsider.get(f"/api/v1/models/{model.pk}/").status_code == 404
    owner_client.force_login(people.other)
    assert owner_client.get(page).status_code == 404
    owner_client.force_login(people.owner)

    job_id = model.job.pk
    reply = owner_client.post(page + "delete/")
    assert reply.status_code == 302 and reply["Location"] == "/"
    assert not TrainedModel.objects.filter(pk=model.pk).exists()
    assert not Job.objects.filter(pk=job_id).exists()
