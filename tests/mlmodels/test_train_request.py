"""Training has one write path: the new-model page and the API both go through
``TrainRequest`` and ``services.train``, and start the same models for the same request."""

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core import uploads
from apps.core.storage import get_store
from apps.mlmodels.models import TrainedModel
from apps.mlmodels.params import DEFAULT_BASE_LR, DEFAULT_BATCH_SIZE
from tests.conftest import grant_custom_code
from tests.mlmodels.test_errors import ready_dataset
from tests.mlmodels.test_pages import NEW, field_errors, form_data

SHOWN = ("network", "solver", "gpus", "visibility", "sweep")


def _shown(model: TrainedModel) -> dict:
    return {name: getattr(model, name) for name in SHOWN if name != "sweep"} | {
        "sweep": bool(model.sweep)
    }


def test_the_page_and_the_api_start_the_same_models(client, api_client, people):
    dataset = ready_dataset(people.owner)
    client.force_login(people.owner)
    reply = client.post(NEW, form_data(dataset, batch_size="16; 32", seed="3"))
    assert reply.status_code == 302, field_errors(reply.content.decode())
    from_page = sorted(TrainedModel.objects.all(), key=lambda m: m.solver["batch_size"])

    api = api_client.as_user(people.owner)
    fields = form_data(dataset)
    solver = {
        "epochs": 5, "batch_size": [16, 32], "base_lr": 0.01, "step_values": [50],
        "seed": 3, "augmentation": {},
    }  # fmt: skip
    for name in ("policy", "step_size", "gamma", "power", "optimizer", "momentum",
                 "weight_decay", "val_interval", "snapshot_interval", "mean_subtraction"):  # fmt: skip
        solver[name] = fields[name]
    reply = api.post(
        "/api/v1/models/",
        {"dataset": dataset.pk, "name": "from the page", "network": {"name": "lenet"},
         "solver": solver},
        format="json",
    )  # fmt: skip
    assert reply.status_code == 201, reply.json()
    from_api = TrainedModel.objects.exclude(pk__in=[m.pk for m in from_page])
    from_api = sorted(from_api, key=lambda m: m.solver["batch_size"])
    assert [_shown(m) for m in from_api] == [_shown(m) for m in from_page]


def test_sweep_defaults_are_the_solver_defaults(api_client, people):
    dataset = ready_dataset(people.owner)
    reply = api_client.as_user(people.owner).post(
        "/api/v1/models/",
        {"dataset": dataset.pk, "name": "defaults", "network": {}, "solver": {}},
        format="json",
    )
    assert reply.status_code == 201, reply.json()
    model = TrainedModel.objects.get()
    assert (model.solver["batch_size"], model.solver["base_lr"]) == (
        DEFAULT_BATCH_SIZE,
        DEFAULT_BASE_LR,
    )


def test_a_model_file_sent_with_the_page_is_stored_as_the_callers_upload(client, people):
    dataset = ready_dataset(people.owner)
    client.force_login(grant_custom_code(people.owner))
    data = form_data(dataset, network_source="upload")
    data["pretrained_file"] = SimpleUploadedFile("net.keras", b"not really a model")
    reply = client.post(NEW, data)
    assert reply.status_code == 302, field_errors(reply.content.decode())
    key = TrainedModel.objects.get().network["upload_key"]
    assert uploads.is_owned(key, people.owner)
    assert get_store().get(key) == b"not really a model"


def test_a_refused_model_file_is_kept_only_for_the_next_try(client, people):
    """No model is created; the file is stored once, as the caller's upload that the page
    carries to the next try (tests/mlmodels/test_form_guidance.py), and nowhere else."""
    empty = {"label": {"kind": "class"}, "stages": {"train": {"count": 0}}}
    dataset = ready_dataset(people.owner, manifest=empty)  # refused by the service
    client.force_login(grant_custom_code(people.owner))
    data = form_data(dataset, network_source="upload")
    data["pretrained_file"] = SimpleUploadedFile("net.keras", b"not really a model")
    reply = client.post(NEW, data)
    assert reply.status_code == 200
    page = reply.content.decode()
    assert "no training entries" in str(field_errors(page))
    assert not TrainedModel.objects.exists()
    stored = list(get_store().list(f"uploads/{people.owner.pk}/"))
    assert len(stored) == 1 and f'name="pretrained_key" value="{stored[0]}"' in page


def test_a_training_is_queued_with_the_priority_asked_for(client, api_client, people):
    """Low for anyone, on the page and in the API; high only with the permission (or staff),
    refused with an error at the field otherwise."""
    dataset = ready_dataset(people.owner)
    client.force_login(people.owner)
    reply = client.post(NEW, form_data(dataset, name="background", priority="0"))
    assert reply.status_code == 302, field_errors(reply.content.decode())
    assert TrainedModel.objects.get(name="background").job.priority == 0

    reply = client.post(NEW, form_data(dataset, name="urgent", priority="2"))
    assert reply.status_code == 200
    assert "high-priority" in " ".join(field_errors(reply.content.decode())["priority"])
    api = api_client.as_user(people.owner)
    request = {"dataset": dataset.pk, "name": "urgent", "network": {}, "solver": {}}
    reply = api.post("/api/v1/models/", {**request, "priority": 2}, format="json")
    assert reply.status_code == 400 and "priority" in reply.json(), reply.json()
    assert not TrainedModel.objects.filter(name="urgent").exists()

    people.owner.is_staff = True
    people.owner.save()
    reply = api.post("/api/v1/models/", {**request, "priority": 2}, format="json")
    assert reply.status_code == 201, reply.json()
    assert TrainedModel.objects.get(name="urgent").job.priority == 2
