"""The evaluation pages: the confusion matrix's cells link to their entries, the entries
page filters with the API's FilterSet, the compare page shows evaluations side by side,
the evaluate form names the field at fault, and other users' evaluations are not found."""

import re

import numpy as np
import pytest

from apps.core.storage import get_store
from apps.evaluations.models import Evaluation
from apps.mlmodels import snapshots
from tests.evaluations.helpers import finished_evaluation, model_row, stored_table


@pytest.fixture
def owner_client(client, people):
    client.force_login(people.owner)
    return client


def test_confusion_matrix_cells_link_to_their_entries(owner_client, evaluation):
    page = owner_client.get(f"/evaluations/{evaluation.pk}/").content.decode()
    table = stored_table(evaluation)
    matrix = np.zeros((10, 10), int)
    np.add.at(matrix, (table["label"], table["probs"].argmax(1)), 1)
    links = re.findall(
        r'href="/evaluations/\d+/entries/\?true=(\d+)&amp;predicted=(\d+)">(\d+)<', page
    )
    assert {(int(t), int(p)): int(n) for t, p, n in links} == {
        (t, p): matrix[t, p] for t in range(10) for p in range(10) if matrix[t, p]
    }
    t, p = next((t, p) for t, p, _ in links if t != p)
    entries = owner_client.get(f"/evaluations/{evaluation.pk}/entries/?true={t}&predicted={p}")
    shown = [int(i) for i in re.findall(r'data-index="(\d+)"', entries.content.decode())]
    assert (
        shown
        == np.flatnonzero(
            (table["label"] == int(t)) & (table["probs"].argmax(1) == int(p))
        ).tolist()
    )
    assert (
        f'href="/datasets/{evaluation.dataset_id}/entries/val/{shown[0]}.png"'
        in entries.content.decode()
    )
    assert owner_client.get(f"/evaluations/{evaluation.pk}/entries/?true=x").status_code == 404


def test_top_page_and_csv(owner_client, evaluation):
    page = owner_client.get(f"/evaluations/{evaluation.pk}/top/").content.decode()
    probs = stored_table(evaluation)["probs"]
    block = page.split('data-class="3"')[1].split("</div>\n")[0]
    shown = [int(i) for i in re.findall(r'data-index="(\d+)"', block)]
    assert shown == np.argsort(-probs[:, 3], kind="stable")[:9].tolist()
    reply = owner_client.get(f"/evaluations/{evaluation.pk}/predictions.csv")
    assert reply.status_code == 200 and b"".join(reply.streaming_content).count(b"\n") == 121


def test_other_users_pages_are_not_found(client, people, evaluation):
    client.force_login(people.other)
    for suffix in ("", "entries/", "top/", "predictions.csv"):
        assert client.get(f"/evaluations/{evaluation.pk}/{suffix}").status_code == 404, suffix
    assert client.post(f"/evaluations/{evaluation.pk}/delete/").status_code == 404
    assert (
        client.get(f"/evaluations/versus/?a={evaluation.pk}&b={evaluation.pk}").status_code == 404
    )
    assert evaluation.name not in client.get("/evaluations/").content.decode()
    client.force_login(people.team_viewer)
    Evaluation.objects.filter(pk=evaluation.pk).update(team=people.team, visibility="team")
    evaluation.model.team, evaluation.model.visibility = people.team, "team"
    evaluation.model.save()
    assert client.get(f"/evaluations/{evaluation.pk}/").status_code == 200
    assert client.post(f"/evaluations/{evaluation.pk}/delete/").status_code == 403
    assert Evaluation.objects.filter(pk=evaluation.pk).exists()


def test_compare_page_shows_evaluations_side_by_side(owner_client, people, evaluation, dataset):
    table = stored_table(evaluation)
    other_model = model_row(people.owner, dataset, "other")
    other = finished_evaluation(
        people.owner,
        other_model,
        table["label"],
        np.roll(table["probs"], 1, axis=1),
        dataset=dataset,
    )
    page = owner_client.get(f"/models/compare/?id={evaluation.model_id}&id={other_model.pk}")
    text = page.content.decode()
    assert 'id="compare-evaluations"' in text
    assert f'data-evaluation="{evaluation.pk}">{evaluation.summary["accuracy"]:.4f}' in text
    assert f'data-evaluation="{other.pk}">' in text
    versus = f"/evaluations/versus/?a={evaluation.pk}&amp;b={other.pk}"
    assert versus in text
    reply = owner_client.get(versus.replace("&amp;", "&"))
    right = (table["probs"].argmax(1) == table["label"]) & (
        np.roll(table["probs"], 1, 1).argmax(1) != table["label"]
    )
    assert f"{int(right.sum())} entr" in reply.content.decode()


def test_the_model_page_links_to_evaluate(owner_client, evaluation):
    text = owner_client.get(f"/models/{evaluation.model_id}/").content.decode()
    assert f'href="/evaluations/new/?model={evaluation.model_id}"' in text
    assert f'href="/evaluations/{evaluation.pk}/"' in text


def test_the_evaluate_form_names_the_field_at_fault(owner_client, people, dataset):
    model = model_row(people.owner, dataset)
    get_store().put(snapshots.key(model.pk, 1), b"snapshot")
    page = owner_client.get(f"/evaluations/new/?model={model.pk}").content.decode()
    assert f'<option value="{model.pk}" selected>' in page
    reply = owner_client.post(
        "/evaluations/new/", {"model": model.pk, "source": "archive", "top_n": "5"}
    )
    assert reply.status_code == 200
    block = reply.content.decode().split('data-field="archive"')[1].split("data-field=")[0]
    assert "Upload an archive of images." in block
    reply = owner_client.post(
        "/evaluations/new/", {"model": model.pk, "source": "stage", "stage": "val"}
    )
    evaluation = Evaluation.objects.get()
    assert reply.status_code == 302 and reply["Location"] == f"/evaluations/{evaluation.pk}/"
    assert evaluation.job.kind == "model.evaluate" and evaluation.owner == people.owner
