"""What pages show people: values without Python reprs, one status colour scheme, log
levels by their writer's marker, styled error pages with navigation, an onboarding Home and
"Train a model" on each ready dataset."""

import re

import pytest
from django.test import RequestFactory
from django.views import defaults

from apps.core.templatetags.digits_ui import human_items, human_key, human_value, status_colour
from apps.jobs.loglevel import stderr_level
from apps.mlmodels.models import TrainedModel
from tests.mlmodels.test_errors import ready_dataset


def test_values_read_as_words_and_units():
    assert human_value(None) == "—" and human_value(True) == "Yes" and human_value(False) == "No"
    assert human_value(0.1 + 0.2) == "0.3" and human_value(32.0) == "32"
    assert human_value(42, "steps_per_epoch") == "42 steps"
    assert human_value(33.0, "crop_percent") == "33%" and human_value("sgd", "optimizer") == "SGD"
    assert human_value({"flip_horizontal": True, "hue": 0.0}) == "Flip horizontal: Yes; Hue: 0"
    assert human_value({"upload_key": "uploads/1/ab/x.zip", "name": "x.zip"}) == "x.zip"
    assert human_key("gpu_mode") == "GPU mode" and human_key("base_lr") == "Base learning rate"
    assert human_key("val/loss") == "Validation loss"
    rows = human_items({"epochs": 5, "augmentation": {"flip_vertical": False}, "seed": None})
    assert rows == [("Epochs", "5 epochs"), ("Augmentation: Flip vertical", "No"), ("Seed", "—")]


def test_one_colour_per_status_and_ready_is_not_error():
    assert status_colour("ready") == status_colour("done") == "success"
    assert status_colour("error") == status_colour("failed") == "danger"
    assert len({status_colour(s) for s in ("ready", "error", "aborted", "running")}) == 4


@pytest.mark.parametrize(
    "line, level",
    [
        ("2026-11-30 19:00:00.123456: I tensorflow/core/platform/cpu_feature_guard.cc:210] "
         "This TensorFlow binary is optimized", "info"),
        ("I0000 00:00:1764529200.1 12345 cuda_executor.cc:1015] successful NUMA node", "info"),
        ("W0000 00:00:1764529200.1 12345 gpu_device.cc:2344] Cannot dlopen some GPU", "warning"),
        ("WARNING: All log messages before absl::InitializeLog() is called", "warning"),
        ("INFO:digits:epoch 1", "info"),
        ("Traceback (most recent call last):", "error"),
        ("ValueError: bad input", "error"),
    ],
)  # fmt: skip
def test_stderr_lines_keep_their_own_level(line, level):
    assert stderr_level(line) == level


def test_option_tables_show_no_python_reprs(client, people):
    dataset = ready_dataset(
        people.owner, options={"size": 16, "include_bad": False, "mean_image": True, "seed": None}
    )
    model = TrainedModel.objects.create(
        owner=people.owner, dataset=dataset, name="m", status="ready",
        network={"source": "standard", "name": "lenet"},
        solver={"epochs": 3, "base_lr": 0.01, "shuffle": True, "step_values": [50.0],
                "augmentation": {"flip_horizontal": False, "crop_percent": 10.0}},
        gpus={"mode": "count", "count": 2},
    )  # fmt: skip
    client.force_login(people.owner)
    page = client.get(f"/datasets/{dataset.pk}/").content.decode()
    options = page.split('id="dataset-options"', 1)[1].split("</table>", 1)[0]
    assert "Include bad" in options and ">No<" in options and ">Yes<" in options
    assert not re.search(r">(None|True|False)<|\{", options)
    page = client.get(f"/models/{model.pk}/").content.decode()
    options = page.split('id="model-options"', 1)[1].split("</table>", 1)[0]
    assert "Base learning rate" in options and "Augmentation: Random crop" not in options
    assert "Augmentation: Crop percent</th><td>10%" in options and ">2 GPUs<" in options
    assert not re.search(r">(None|True|False)<|\{|\[", options)
    badge = re.search(r'<span class="badge text-bg-(\w+) status-ready" id="model-status">', page)
    assert badge and badge.group(1) == "success"


def test_an_empty_home_leads_to_a_dataset_and_a_model(client, people):
    client.force_login(people.owner)
    page = client.get("/").content.decode()
    assert re.search(r"<h1[^>]*>Train your first model</h1>", page)
    assert 'href="/datasets/new/" id="start-dataset">Create a dataset<' in page
    assert 'href="/models/new/" id="start-model">Train a model<' in page
    ready_dataset(people.owner, "digits")
    page = client.get("/").content.decode()
    assert "onboarding" not in page and re.search(r"<h1[^>]*>Home</h1>", page)


def test_each_ready_dataset_offers_to_train_a_model_on_it(client, people):
    ready = ready_dataset(people.owner, "ready one")
    building = ready_dataset(people.owner, "building one", status="building")
    client.force_login(people.owner)
    train = f'href="/models/new/?dataset={ready.pk}" data-role="train"'
    assert train in client.get(f"/datasets/{ready.pk}/").content.decode()
    listing = client.get("/datasets/").content.decode()
    assert train in listing and f"?dataset={building.pk}" not in listing
    assert 'data-role="train"' not in client.get(f"/datasets/{building.pk}/").content.decode()
    form = client.get(f"/models/new/?dataset={ready.pk}").content.decode()
    assert f'<option value="{ready.pk}" selected>ready one</option>' in form


def test_error_pages_are_styled_with_navigation(client, people):
    client.force_login(people.other)
    dataset = ready_dataset(people.owner)
    missing = client.get(f"/datasets/{dataset.pk}/")  # another's private dataset: 404
    assert missing.status_code == 404
    page = missing.content.decode()
    assert '<h1 class="h3">Page not found</h1>' in page and 'id="main-nav"' in page
    dataset.visibility = "public"
    dataset.save()
    refused = client.post(f"/datasets/{dataset.pk}/delete/")
    assert refused.status_code == 403
    assert '<h1 class="h3">Not allowed</h1>' in refused.content.decode()


def test_the_500_page_renders_without_a_request_context():
    response = defaults.server_error(RequestFactory().get("/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in page and 'href="/"' in page and "digits.css" in page


def test_the_theme_is_set_before_the_styles_without_an_inline_script(client, people):
    client.force_login(people.owner)
    page = client.get("/").content.decode()
    head = page.split("</head>", 1)[0]
    assert head.index("digits/theme.js") < head.index("bootstrap.min.css")  # no flash
    assert "<script>" not in page and "<style" not in page  # the CSP allows neither
    assert 'href="#main">Skip to content</a>' in page and '<main class="' in page
    assert 'id="main"' in page
