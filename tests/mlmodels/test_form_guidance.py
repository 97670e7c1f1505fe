"""The new-model form guides: human labels, fields revealed by their choice, one input
style, errors at their field (announced with aria-describedby), and a model file kept
across a refused try."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core import uploads
from apps.core.storage import get_store
from apps.mlmodels.models import TrainedModel
from tests.conftest import grant_custom_code
from tests.mlmodels.test_errors import ready_dataset
from tests.mlmodels.test_pages import NEW, field_errors, form_data


@pytest.fixture
def owner_client(client, people):
    client.force_login(grant_custom_code(people.owner))
    return client


def test_labels_are_human_and_fields_are_revealed_by_their_choice(owner_client, people):
    page = owner_client.get(NEW).content.decode()
    labels = re.findall(r'<label class="form-label[^"]*" for="id_(\w+)">([^<]+)</label>', page)
    labels = dict(labels)
    assert labels["gpu_mode"] == "GPU mode" and labels["gpu_count"] == "Number of GPUs"
    assert labels["batch_size"] == "Batch size" and labels["policy"] == "Learning-rate policy"
    assert "Gpu" not in page
    rules = dict(
        (name, (control, values.split()))
        for name, control, values in re.findall(
            r'data-field="(\w+)" data-show-if="(\w+)" data-show-values="([^"]+)"', page
        )
    )
    assert rules["gpu_ids"] == ("gpu_mode", ["specific"])
    assert rules["gpu_count"] == ("gpu_mode", ["count"])
    assert rules["custom_code"] == ("network_source", ["custom"])
    assert rules["previous_model"] == ("network_source", ["previous"])
    assert rules["step_values"] == ("policy", ["multistep"])
    assert "fixed" not in rules["gamma"][1] and "poly" in rules["power"][1]
    assert "epochs" not in rules and "optimizer" not in rules  # always shown
    assert '<option value="sgd" selected>SGD</option>' in page


def test_every_input_has_the_bootstrap_style_of_its_kind(owner_client, people):
    page = owner_client.get(NEW).content.decode()
    form = page.split('id="model-form"', 1)[1].split("</form>", 1)[0]
    widgets = re.findall(r"<(input|select|textarea)\b([^>]*)>", form)
    assert len(widgets) > 30
    for tag, attrs in widgets:
        if 'type="hidden"' in attrs:
            continue
        kind = re.search(r'type="(\w+)"', attrs)
        expected = {"select": "form-select"}.get(tag, "form-control")
        if kind and kind.group(1) == "checkbox":
            expected = "form-check-input"
        assert re.search(rf'class="[^"]*\b{expected}\b', attrs), (tag, attrs)


def test_an_error_is_shown_at_its_field_and_named_by_it(owner_client, people):
    dataset = ready_dataset(people.owner)
    page = owner_client.post(NEW, form_data(dataset, epochs=0)).content.decode()
    epochs = re.search(r"<input[^>]*id=\"id_epochs\"[^>]*>", page).group(0)
    assert "is-invalid" in epochs and 'aria-invalid="true"' in epochs
    assert 'aria-describedby="id_epochs-error"' in epochs
    error = page.split('id="id_epochs-error"', 1)[1].split("</div></div>", 1)[0]
    assert "greater than or equal to 1" in error


def kept_key(page: str) -> str:
    return re.search(r'name="pretrained_key" value="([^"]+)"', page).group(1)


def test_a_model_file_is_kept_across_a_refused_try(owner_client, people):
    dataset = ready_dataset(people.owner)
    data = form_data(dataset, network_source="upload", epochs=0)
    data["pretrained_file"] = SimpleUploadedFile("net.keras", b"my model bytes")
    page = owner_client.post(NEW, data).content.decode()
    assert "epochs" in field_errors(page)
    key = kept_key(page)
    assert uploads.is_owned(key, people.owner) and get_store().get(key) == b"my model bytes"
    assert "Kept from your last try: net.keras" in page

    # The next try sends no file, only the kept key: the model trains from that file.
    reply = owner_client.post(NEW, form_data(dataset, network_source="upload", pretrained_key=key))
    assert reply.status_code == 302, field_errors(reply.content.decode())
    assert TrainedModel.objects.get().network["upload_key"] == key


def test_another_users_kept_key_is_refused_at_the_file_field(client, people):
    theirs = uploads.store_bytes(b"their model", "theirs.keras", people.other)
    dataset = ready_dataset(people.owner)
    client.force_login(grant_custom_code(people.owner))
    data = form_data(dataset, network_source="upload", pretrained_key=theirs)
    reply = client.post(NEW, data)
    page = reply.content.decode()
    assert reply.status_code == 200 and not TrainedModel.objects.exists()
    assert "Unknown upload" in " ".join(field_errors(page)["pretrained_file"])
    assert "theirs.keras" not in page  # not announced as kept
