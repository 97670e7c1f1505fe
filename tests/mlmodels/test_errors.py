"""Bad input is a clear error and never a stuck job.

User network code that does not compile, builds the wrong output or raises fails its
job with the user's line numbers; impossible options are refused with 400 naming the
field before anything is created; a comma-separated batch size is a sweep.
"""

import textwrap

import pytest

from apps.datasets.models import Dataset
from apps.jobs.models import Job
from apps.mlmodels import snapshots
from apps.mlmodels.models import TrainedModel
from tests.mlmodels.helpers import MODELS_URL, build_dataset, create_model, finished, log_lines

SYNTAX_ERROR = textwrap.dedent("""\
    import keras

    def build_model(input_shape, num_classes)
        return keras.Sequential([keras.Input(input_shape)])
    """)
WRONG_SHAPE = textwrap.dedent("""\
    import keras
    from keras import layers

    def build_model(input_shape, num_classes):
        return keras.Sequential(
            [keras.Input(input_shape), layers.Flatten(), layers.Dense(3, activation="softmax")]
        )
    """)
RAISES = textwrap.dedent("""\
    def pick_width(num_classes):
        raise ValueError(f"no layer width for {num_classes} classes")

    def build_model(input_shape, num_classes):
        width = pick_width(num_classes)
        return width
    """)


@pytest.mark.tensorflow
@pytest.mark.timeout(600)
def test_broken_network_code_fails_the_job_with_the_users_line(api, data_root, worker):
    dataset = build_dataset(api, data_root, size=16, per_class=10, name="tiny")
    created = {
        name: create_model(api, dataset, name, network={"source": "custom", "code": code})
        for name, code in (("syntax", SYNTAX_ERROR), ("shape", WRONG_SHAPE), ("raises", RAISES))
    }
    models = {name: finished(m["id"], timeout=300) for name, m in created.items()}
    for name, model in models.items():
        job = model.job
        assert model.status == "error" and job.status == "error", (name, job.error)
        assert job.attempts == 1, name  # a bug in the network is not retried
        assert snapshots.epochs(model.pk) == [], name
        print(f"{name}: {job.error}")

    syntax = models["syntax"].job.error
    assert "SyntaxError" in syntax and "line 3" in syntax, syntax
    assert "def build_model(input_shape, num_classes)" in syntax

    shape = models["shape"].job.error
    assert "(None, 3)" in shape and "(None, 10)" in shape and "one score per class" in shape

    raised = models["raises"].job.error
    assert "ValueError: no layer width for 10 classes" in raised
    assert 'File "<network.py>", line 5, in build_model' in raised
    assert 'File "<network.py>", line 2, in pick_width' in raised
    assert 'raise ValueError(f"no layer width for {num_classes} classes")' in raised
    assert any("line 2, in pick_width" in line for line in log_lines(models["raises"].job))


# --- refused before anything is created ---------------------------------------------------
def ready_dataset(owner, name="ready", **fields) -> Dataset:
    """A dataset row that looks built (no shards: nothing here trains)."""
    manifest = {
        "label": {"kind": "class"}, "label_names": ["a", "b"],
        "stages": {"train": {"count": 8}, "val": {"count": 2}},
        "feature": {"shape": [8, 8, 1], "dtype": "uint8"},
    }  # fmt: skip
    values = {"type": "image-classification", "status": "ready", "manifest": manifest, **fields}
    return Dataset.objects.create(owner=owner, name=name, **values)


def post(api, dataset, solver=None, network=None, name="m"):
    body = {
        "dataset": dataset.pk, "name": name,
        "network": network or {"source": "standard", "name": "lenet"},
        "solver": {"epochs": 2, "batch_size": 8, "base_lr": 0.01, **(solver or {})},
    }  # fmt: skip
    return api.post(MODELS_URL, body, format="json")


def test_a_dataset_still_building_is_refused_naming_it(api, people):
    building = ready_dataset(people.owner, "half-built digits", status="building")
    reply = post(api, building)
    assert reply.status_code == 400, reply.content
    [message] = reply.json()["dataset"]
    assert "half-built digits" in message and "building" in message
    failed = ready_dataset(people.owner, "failed digits", status="error")
    assert "failed digits" in post(api, failed).json()["dataset"][0]
    foreign = ready_dataset(people.other, "someone else's")
    assert post(api, foreign).json()["dataset"] == ["Unknown dataset."]
    assert not TrainedModel.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize(
    ("solver", "network", "field"),
    [
        ({"batch_size": 0}, None, "batch_size"),
        ({"batch_size": "16,0"}, None, "batch_size"),
        ({"batch_size": "sixteen"}, None, "batch_size"),
        ({"base_lr": -0.1}, None, "base_lr"),
        ({"base_lr": 0}, None, "base_lr"),
        ({"epochs": 0}, None, "epochs"),
        ({"policy": "cyclic"}, None, "policy"),
        ({"policy": "exp", "gamma": 1.5}, None, "gamma"),
        ({"optimizer": "lbfgs"}, None, "optimizer"),
        ({"momentum": 1.5}, None, "momentum"),
        ({"step_values": [50, 150]}, None, "step_values"),
        ({"metrics_every": 0}, None, "metrics_every"),
        ({}, {"source": "standard", "name": "vgg99"}, "name"),
        ({}, {"source": "custom", "code": "  "}, "code"),
    ],
)
def test_impossible_options_are_refused_naming_the_field(api, people, solver, network, field):
    reply = post(api, ready_dataset(people.owner), solver=solver, network=network)
    assert reply.status_code == 400, reply.content
    errors = reply.json()["network" if network else "solver"]
    assert set(errors) == {field}, errors
    assert not TrainedModel.objects.exists() and not Job.objects.exists()


def test_the_exp_policy_accepts_gamma_up_to_one(api, people):
    reply = post(api, ready_dataset(people.owner), solver={"policy": "exp", "gamma": 0.999})
    assert reply.status_code == 201, reply.content
    created = reply.json()
    assert created["sweep"] == "" and [m["solver"]["gamma"] for m in created["models"]] == [0.999]


def test_comma_separated_values_start_a_sweep(api, people):
    dataset = ready_dataset(people.owner)
    reply = post(api, dataset, solver={"batch_size": "16,32"}, name="sweep")
    assert reply.status_code == 201, reply.content
    created = reply.json()
    models = created["models"]
    assert len(models) == 2
    sweep = {m["sweep"] for m in models}
    assert sweep == {created["sweep"]} and sweep != {""}
    assert sorted(m["solver"]["batch_size"] for m in models) == [16, 32]
    assert {m["solver"]["base_lr"] for m in models} == {0.01}
    jobs = Job.objects.filter(pk__in=[m["job"] for m in models])
    assert {(j.kind, j.queue, j.status) for j in jobs} == {("model.train", "gpu", "queued")}
    assert sorted(j.params["solver"]["batch_size"] for j in jobs) == [16, 32]
    listed = api.get(MODELS_URL, {"sweep": sweep.pop()}).json()["results"]
    assert sorted(m["name"] for m in listed) == sorted(m["name"] for m in models)
    # Batch sizes × learning rates: one model per combination.
    reply = post(api, dataset, solver={"batch_size": [8, 16], "base_lr": "0.1,0.01"}, name="grid")
    assert reply.status_code == 201, reply.content
    grid = {(m["solver"]["batch_size"], m["solver"]["base_lr"]) for m in reply.json()["models"]}
    assert grid == {(8, 0.1), (8, 0.01), (16, 0.1), (16, 0.01)}
