"""The evaluation API: figures equal to scikit-learn's on the stored predictions, entries
filtered like NumPy masks, the CSV, who may see what, and errors naming the field."""

import csv
import io

import numpy as np
import pytest

from apps.core import uploads
from apps.core.storage import get_store
from apps.evaluations.models import Evaluation
from apps.jobs import services as jobs
from apps.jobs.models import Job
from apps.mlmodels import snapshots
from tests.evaluations.helpers import NAMES, finished_evaluation, model_row, stored_table

URL = "/api/v1/evaluations/"


@pytest.fixture
def api(api_client, people):
    return api_client.as_user(people.owner)


def test_summary_equals_scikit_learn_on_the_stored_predictions(api, evaluation):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    body = api.get(f"{URL}{evaluation.pk}/").json()
    table = stored_table(evaluation)
    truth, guess = table["label"], table["probs"].argmax(axis=1)
    summary = body["summary"]
    assert summary["count"] == summary["labelled"] == 120
    assert summary["accuracy"] == pytest.approx(np.mean(truth == guess))
    top5 = np.argsort(-table["probs"], axis=1)[:, :5]
    assert summary["top_n_accuracy"] == pytest.approx(np.mean((top5 == truth[:, None]).any(1)))
    assert summary["confusion"] == confusion_matrix(truth, guess, labels=range(10)).tolist()
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, guess, labels=range(10), zero_division=0
    )
    assert [c["precision"] for c in summary["classes"]] == pytest.approx(list(precision))
    assert [c["recall"] for c in summary["classes"]] == pytest.approx(list(recall))
    assert [c["f1"] for c in summary["classes"]] == pytest.approx(list(f1))
    assert body["status"] == "done" and body["accuracy"] == summary["accuracy"]


def test_entries_filtered_by_true_and_predicted_class(api, evaluation):
    table = stored_table(evaluation)
    truth, guess = table["label"], table["probs"].argmax(axis=1)
    cells = {(t, p) for t, p in zip(truth, guess, strict=True) if t != p}
    t, p = sorted(cells)[0]
    reply = api.get(f"{URL}{evaluation.pk}/entries/", {"true": t, "predicted": p})
    assert reply.status_code == 200
    body = reply.json()
    expected = np.flatnonzero((truth == t) & (guess == p)).tolist()
    assert body["count"] == len(expected)
    assert [e["index"] for e in body["results"]] == expected
    first = body["results"][0]
    assert first["label"] == t and first["predicted"] == p and first["correct"] is False
    assert first["label_name"] == NAMES[t] and len(first["top"]) == 5
    assert first["image"].endswith(
        f"/api/v1/datasets/{evaluation.dataset_id}/entries/val/{first['index']}/image/"
    )
    assert api.get(first["image"]).status_code == 200  # the existing entries API serves it
    wrong = api.get(f"{URL}{evaluation.pk}/entries/", {"correct": "false", "page_size": 500})
    assert wrong.json()["count"] == int((truth != guess).sum())
    paged = api.get(f"{URL}{evaluation.pk}/entries/", {"page_size": 7, "page": 2}).json()
    assert [e["index"] for e in paged["results"]] == list(range(7, 14))


@pytest.mark.parametrize(
    ("query", "field"),
    [({"true": "x"}, "true"), ({"true": 10}, "true"), ({"predicted": -1}, "predicted")],
)
def test_a_bad_entry_filter_names_the_field(api, evaluation, query, field):
    reply = api.get(f"{URL}{evaluation.pk}/entries/", query)
    assert reply.status_code == 400 and list(reply.json()) == [field]


def test_csv_download_holds_every_entry(api, evaluation):
    reply = api.get(f"{URL}{evaluation.pk}/csv/")
    assert reply.status_code == 200 and reply["Content-Type"].startswith("text/csv")
    assert "attachment" in reply["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(reply.streaming_content).decode())))
    table = stored_table(evaluation)
    assert [int(r["index"]) for r in rows] == list(range(120))
    assert [int(r["label"]) for r in rows] == table["label"].tolist()
    assert [int(r["top1"]) for r in rows] == table["probs"].argmax(axis=1).tolist()
    assert [float(r["p_digit 3"]) for r in rows] == pytest.approx(table["probs"][:, 3], rel=1e-5)


def test_top_images_per_class_are_the_most_confident(api, evaluation):
    body = api.get(f"{URL}{evaluation.pk}/top/", {"per_class": 4}).json()
    probs = stored_table(evaluation)["probs"]
    assert [c["name"] for c in body] == NAMES
    for cls in body:
        expected = np.argsort(-probs[:, cls["index"]], kind="stable")[:4].tolist()
        assert [e["index"] for e in cls["entries"]] == expected
    assert api.get(f"{URL}{evaluation.pk}/top/", {"per_class": 0}).json() == {
        "per_class": ["A number from 1 to 50."]
    }


def test_a_right_b_wrong(api, people, evaluation, dataset):
    table = stored_table(evaluation)
    labels = table["label"]
    other_probs = np.roll(table["probs"], 1, axis=1)  # mostly wrong
    other_probs[:40] = table["probs"][:40]
    other = finished_evaluation(
        people.owner, model_row(people.owner, dataset, "other"), labels, other_probs,
        dataset=dataset,
    )  # fmt: skip
    reply = api.get(f"{URL}{evaluation.pk}/versus/", {"other": other.pk, "page_size": 500})
    expected = np.flatnonzero(
        (table["probs"].argmax(1) == labels) & (other_probs.argmax(1) != labels)
    ).tolist()
    assert reply.status_code == 200 and [e["index"] for e in reply.json()["results"]] == expected
    assert expected and min(expected) >= 40
    unlike = finished_evaluation(people.owner, other.model, labels, other_probs)  # an archive
    reply = api.get(f"{URL}{evaluation.pk}/versus/", {"other": unlike.pk})
    assert reply.status_code == 400 and list(reply.json()) == ["other"]


def test_another_users_private_evaluation_is_not_found(api_client, people, evaluation):
    client = api_client.as_user(people.other)
    base = f"{URL}{evaluation.pk}/"
    for url in (base, base + "entries/", base + "top/", base + "csv/"):
        assert client.get(url).status_code == 404, url
    assert client.delete(base).status_code == 404
    assert client.get(URL).json()["count"] == 0
    assert client.get(f"{base}versus/", {"other": evaluation.pk}).status_code == 404
    # Their own evaluation against the owner's private one: the other one is unknown.
    theirs = finished_evaluation(
        people.other, model_row(people.other, evaluation.dataset, "theirs"),
        stored_table(evaluation)["label"], stored_table(evaluation)["probs"],
        dataset=evaluation.dataset,
    )  # fmt: skip
    reply = client.get(f"{URL}{theirs.pk}/versus/", {"other": evaluation.pk})
    assert reply.status_code == 404
    assert client.get(f"{URL}{theirs.pk}/versus/", {"other": theirs.pk}).status_code == 200


def test_a_view_only_right_never_changes_or_deletes(api_client, people, evaluation):
    evaluation.model.team, evaluation.model.visibility = people.team, "team"
    evaluation.model.save()
    shared = api_client.as_user(people.owner).patch(
        f"{URL}{evaluation.pk}/", {"team": "vision", "visibility": "team"}, format="json"
    )
    assert shared.status_code == 200
    assert Job.objects.get(pk=evaluation.job_id).visibility == "team"  # the job follows
    viewer = api_client.as_user(people.team_viewer)
    assert viewer.get(f"{URL}{evaluation.pk}/entries/").status_code == 200
    assert viewer.patch(f"{URL}{evaluation.pk}/", {"name": "x"}, format="json").status_code == 403
    assert viewer.delete(f"{URL}{evaluation.pk}/").status_code == 403
    assert Evaluation.objects.filter(pk=evaluation.pk, name=evaluation.name).exists()
    # The model is unshared: its evaluations are gone for the team, even if shared.
    evaluation.model.visibility = "private"
    evaluation.model.save()
    assert viewer.get(f"{URL}{evaluation.pk}/").status_code == 404


def test_running_and_failed_evaluations_have_no_entries(api, people, evaluation):
    job = evaluation.job
    Evaluation.objects.filter(pk=evaluation.pk).update(status="running", predictions_key="")
    assert api.get(f"{URL}{evaluation.pk}/entries/").status_code == 409
    Job.objects.filter(pk=job.pk).update(status="running")
    job.refresh_from_db()
    jobs.fail(job, "the archive is unsafe")
    reply = api.get(f"{URL}{evaluation.pk}/csv/")
    assert reply.status_code == 422 and reply.json() == {"detail": "the archive is unsafe"}
    assert Evaluation.objects.get(pk=evaluation.pk).status == "error"


# --- starting an evaluation --------------------------------------------------------------
def post(api, **body):
    return api.post(URL, body, format="multipart" if "archive" in body else "json")


@pytest.fixture
def model(people, dataset):
    model = model_row(people.owner, dataset)
    get_store().put(snapshots.key(model.pk, 1), b"a snapshot")
    return model


def test_evaluating_a_stage_starts_a_job(api, people, model, dataset):
    reply = post(api, model=model.pk, source="stage", stage="val", top_n=3)
    assert reply.status_code == 202, reply.content
    evaluation = Evaluation.objects.get(pk=reply.json()["id"])
    job = evaluation.job
    assert job.kind == "model.evaluate" and job.owner == people.owner and job.queue == "gpu"
    assert job.params["dataset"]["id"] == dataset.pk and job.params["stage"] == "val"
    assert job.params["epoch"] == 1 and job.params["top_n"] == 3
    assert reply.json()["status"] == "running"


def test_an_archive_sent_with_the_request_is_stored_as_the_callers(api, people, model):
    archive = io.BytesIO(b"PK\x05\x06" + b"\0" * 18)
    archive.name = "images.zip"
    reply = post(api, model=model.pk, source="archive", archive=archive)
    assert reply.status_code == 202, reply.content
    key = Evaluation.objects.get().job.params["archive_key"]
    assert uploads.is_owned(key, people.owner) and get_store().exists(key)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "stage", "stage": "test"}, "stage"),  # no test entries
        ({"source": "archive"}, "archive"),
        ({"source": "list"}, "list"),
        ({"source": "stage", "top_n": 0}, "top_n"),
        ({"source": "stage", "epoch": 7}, "epoch"),
        ({"source": "pictures"}, "source"),
    ],
)
def test_bad_input_names_the_field(api, model, body, field):
    reply = post(api, model=model.pk, **body)
    assert reply.status_code == 400 and field in reply.json(), reply.content
    assert not Evaluation.objects.exists() and not Job.objects.filter(kind="model.evaluate")


def test_identifiers_must_be_the_callers(api, people, model, dataset):
    foreign_key = uploads.store_bytes(b"PK", "x.zip", people.other)
    reply = post(api, model=model.pk, source="archive", archive_key=foreign_key)
    assert reply.json() == {"archive_key": ["Unknown upload: upload the file again."]}
    hidden = model_row(people.other, dataset, "hidden")
    assert post(api, model=hidden.pk, source="stage").json() == {"model": ["Unknown model."]}
    from tests.evaluations.helpers import digits_dataset

    theirs = digits_dataset(people.other, train=10, val=10)
    reply = post(api, model=model.pk, source="stage", dataset=theirs.pk)
    assert reply.json() == {"dataset": ["Unknown dataset."]}
    assert not Evaluation.objects.exists()


def test_the_schema_documents_the_real_shapes(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    create = paths["/api/v1/evaluations/"]["post"]["responses"]
    assert {"202", "400", "413"} <= set(create)
    entries = paths["/api/v1/evaluations/{id}/entries/"]["get"]
    assert {"200", "400", "404", "409", "422"} <= set(entries["responses"])
    assert {p["name"] for p in entries["parameters"]} >= {"true", "predicted", "correct", "page"}
    detail = schema["components"]["schemas"]["EvaluationDetail"]["properties"]
    assert "summary" in detail
    summary = schema["components"]["schemas"]["Summary"]["properties"]
    assert {"accuracy", "top_n_accuracy", "confusion", "classes"} <= set(summary)
    csv_answer = paths["/api/v1/evaluations/{id}/csv/"]["get"]["responses"]["200"]
    assert "text/csv" in csv_answer["content"]


def test_cloning_the_job_evaluates_again_with_the_callers_rights(api_client, people, evaluation):
    owner = api_client.as_user(people.owner)
    get_store().put(snapshots.key(evaluation.model_id, 1), b"snapshot")
    reply = owner.post(f"/api/v1/jobs/{evaluation.job_id}/clone/")
    assert reply.status_code == 201, reply.content
    again = Evaluation.objects.get(job_id=reply.json()["id"])
    assert (again.owner, again.model_id, again.dataset_id, again.stage) == (
        people.owner, evaluation.model_id, evaluation.dataset_id, "val",
    )  # fmt: skip
    # Shared with the team, but the dataset is not: a member may not evaluate its stage,
    # nor read its manifest through the job.
    for obj in (evaluation, evaluation.model):
        obj.team, obj.visibility = people.team, "team"
        obj.save()
    jobs.share_like(evaluation.job_id, evaluation)
    member = api_client.as_user(people.team_member)
    shown = member.get(f"/api/v1/jobs/{evaluation.job_id}/").json()["params"]
    assert shown["dataset"] == {"id": evaluation.dataset_id}
    assert shown["train_params"]["dataset"] == {"id": evaluation.dataset_id}
    reply = member.post(f"/api/v1/jobs/{evaluation.job_id}/clone/")
    assert reply.status_code == 400 and "dataset" in str(reply.json())
    assert Evaluation.objects.filter(owner=people.team_member).count() == 0


def test_deleting_the_job_deletes_the_evaluation_and_its_predictions(
    api, evaluation, django_capture_on_commit_callbacks
):
    key = evaluation.predictions_key
    assert get_store().exists(key)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/jobs/{evaluation.job_id}/").status_code == 204
    assert not Evaluation.objects.filter(pk=evaluation.pk).exists()
    assert not get_store().exists(key)


def test_deleting_the_evaluation_deletes_its_job(api, evaluation):
    assert api.delete(f"{URL}{evaluation.pk}/").status_code == 204
    assert not Job.objects.filter(pk=evaluation.job_id).exists()
