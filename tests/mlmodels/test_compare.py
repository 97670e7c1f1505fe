"""Comparing models: the model list (best epochs, sorting, filters) and the compare page
(differing options, the best marked, the curves per epoch), on the pages and the API."""

import json
import re

import pytest

from apps.mlmodels.models import TrainedModel
from tests.mlmodels.test_errors import ready_dataset

LIST, COMPARE = "/models/", "/models/compare/"


def epochs(*rows):
    """Result rows as the trainer writes them: ``(loss, accuracy, val_loss, val_accuracy)``."""
    return [
        {"epoch": n, "loss": loss, "accuracy": acc, "val_loss": vloss, "val_accuracy": vacc}
        for n, (loss, acc, vloss, vacc) in enumerate(rows, start=1)
    ]


def trained(owner, dataset, name, rows, best, visibility="private", **solver):
    return TrainedModel.objects.create(
        owner=owner, dataset=dataset, name=name, visibility=visibility, status="ready",
        network={"source": "standard", "name": "lenet"},
        solver={"epochs": len(rows), "batch_size": 32, "base_lr": 0.01, "optimizer": "sgd",
                **solver},
        result={"epochs": epochs(*rows)}, best_epoch=best,
    )  # fmt: skip


@pytest.fixture
def zoo(people):
    digits = ready_dataset(people.owner, "digits")
    other_data = ready_dataset(people.owner, "letters")
    return {
        "slow": trained(people.owner, digits, "slow", [(2.0, .3, 2.1, .30), (1.5, .5, 1.6, .52)],
                        best=2),
        "fast": trained(people.owner, digits, "fast", [(1.0, .6, 1.1, .61), (0.4, .9, 0.5, .88),
                        (0.3, .93, 0.6, .86)], best=2, base_lr=0.1, optimizer="adam"),
        "letters": trained(people.owner, other_data, "letters", [(0.9, .7, 0.8, .75)], best=1),
        "running": TrainedModel.objects.create(owner=people.owner, dataset=digits,
                                               name="running", status="training"),
        "theirs": trained(people.other, ready_dataset(people.other, "theirs"), "theirs",
                          [(0.1, .99, 0.1, .99)], best=1),
    }  # fmt: skip


def table_names(html: str) -> list[str]:
    body = html.split('id="model-table"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<a href="/models/\d+/">([^<]+)</a>', body)


def test_the_list_ranks_visible_models_by_their_best_epoch(client, people, zoo):
    client.force_login(people.owner)
    page = client.get(LIST, {"sort": "val_accuracy"}).content.decode()
    # Best validation accuracy first; a model without figures last; another's private model never.
    assert table_names(page) == ["fast", "letters", "slow", "running"]
    best_row = re.search(r'<tr data-model="(\d+)" class="table-success"', page)
    assert int(best_row.group(1)) == zoo["fast"].pk
    fast_row = page.split(f'data-model="{zoo["fast"].pk}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="text-end" data-role="val_accuracy">0.8800</td>' in fast_row  # epoch 2
    assert ">3/3<" in fast_row and ">adam<" in fast_row

    assert table_names(client.get(LIST, {"sort": "val_loss"}).content.decode())[:3] == [
        "fast",
        "letters",
        "slow",
    ]
    digits = zoo["slow"].dataset
    page = client.get(LIST, {"dataset": digits.pk, "sort": "name"}).content.decode()
    assert table_names(page) == ["fast", "running", "slow"]
    assert table_names(client.get(LIST, {"status": "training"}).content.decode()) == ["running"]
    assert client.get(LIST, {"dataset": "x"}).status_code == 404
    client.force_login(people.other)
    assert table_names(client.get(LIST).content.decode()) == ["theirs"]


def test_compare_shows_best_epochs_differing_options_and_curves(client, people, zoo):
    client.force_login(people.owner)
    ids = [zoo["slow"].pk, zoo["fast"].pk]
    reply = client.get(COMPARE, {"id": ids})
    assert reply.status_code == 200
    page = reply.content.decode()
    rows = re.findall(r'<tr data-model="(\d+)"( class="table-success")?', page)
    assert [(int(pk), bool(best)) for pk, best in rows] == [(ids[0], False), (ids[1], True)]
    # Only the options that differ get a column: base_lr, epochs, optimizer (not batch size).
    assert re.findall(r'data-differs="(\w+)"', page) == ["epochs", "base_lr", "optimizer"]
    assert "different datasets" not in page
    curves = json.loads(re.search(r'id="compare-curves"[^>]*>(.*?)</script>', page, re.S)[1])
    by_name = {m["name"]: m["series"] for m in curves["models"]}
    assert by_name["fast"]["val_accuracy"] == [[1, 0.61], [2, 0.88], [3, 0.86]]
    assert by_name["slow"]["loss"] == [[1, 2.0], [2, 1.5]]
    assert f'href="/models/{ids[1]}/download/?epoch=2"' in page  # the best epoch's snapshot

    mixed = client.get(COMPARE, {"id": [zoo["fast"].pk, zoo["letters"].pk]}).content.decode()
    assert "different datasets" in mixed


def test_compare_refuses_too_few_models_and_hides_others_private_ones(client, people, zoo):
    client.force_login(people.owner)
    reply = client.get(COMPARE, {"id": [zoo["fast"].pk]}, follow=True)
    assert (
        reply.redirect_chain[-1][0] == LIST and "Choose between 2 and 12" in reply.content.decode()
    )
    assert client.get(COMPARE, {"id": [zoo["fast"].pk, zoo["theirs"].pk]}).status_code == 404
    assert client.get(COMPARE, {"id": [zoo["fast"].pk, 10**6]}).status_code == 404
    assert client.get(COMPARE, {"id": ["x", "y"]}).status_code == 404


def test_the_api_gives_each_models_best_epoch(api_client, people, zoo):
    reply = api_client.as_user(people.owner).get(
        "/api/v1/models/", {"dataset": zoo["fast"].dataset_id}
    )
    best = {m["name"]: m["best"] for m in reply.json()["results"]}
    assert best["fast"] == {"epoch": 2, "val_accuracy": 0.88, "val_loss": 0.5, "loss": 0.4,
                            "accuracy": 0.9, "val_dice": None, "val_mean_iou": None}  # fmt: skip
    assert best["running"] == dict.fromkeys(["epoch", "val_accuracy", "val_loss", "loss",
                                             "accuracy", "val_dice", "val_mean_iou"])  # fmt: skip
