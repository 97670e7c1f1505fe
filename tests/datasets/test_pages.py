"""The dataset pages: new-dataset menu and form, dataset page, explore gallery, images, delete."""

import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from apps.datasets import services, shards, views
from apps.datasets.models import Dataset
from apps.jobs.models import Job
from apps.mlmodels.models import TrainedModel
from tests.datasets.test_build import finished

pytestmark = pytest.mark.usefixtures("fresh_cache")


class Page(HTMLParser):
    """The elements of an HTML page: ``(tag, attrs, text)``; text for figcaptions and links."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, **dict(attrs), "text": ""}
        self.elements.append(element)
        if tag in ("figcaption", "a", "th", "script", "option"):
            self._open.append(element)

    def handle_endtag(self, tag):
        if self._open and self._open[-1]["tag"] == tag:
            self._open.pop()

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data

    def find(self, tag, **attrs):
        return [
            e for e in self.elements
            if e["tag"] == tag and all(e.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]  # fmt: skip


def png(response) -> Image.Image:
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    data = b"".join(response.streaming_content) if response.streaming else response.content
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def entry_url(dataset, stage, index):
    return f"/datasets/{dataset.pk}/entries/{stage}/{index}.png"


def entries_in(html: str, dataset) -> list[tuple[str, int]]:
    """``(stage, index)`` of every entry on a page (linked or shown), once each, in order."""
    pattern = rf"/datasets/{dataset.pk}/entries/(\w+)/(\d+)\.png"
    return list(dict.fromkeys((stage, int(index)) for stage, index in re.findall(pattern, html)))


# --- creating -------------------------------------------------------------------------
def test_new_dataset_menu_lists_the_installed_types(client, people):
    client.force_login(people.owner)
    page = Page(client.get("/datasets/new/").content.decode())
    links = {a["text"].strip(): a["href"] for a in page.find("a") if "href" in a}
    assert links["Test squares"] == "/datasets/new/test-squares/"


def test_new_dataset_page_shows_both_forms(client, people):
    client.force_login(people.owner)
    response = client.get("/datasets/new/test-squares/")
    page = Page(response.content.decode())
    names = {e["name"] for e in page.elements if e["tag"] in ("input", "select") and "name" in e}
    assert {"data-count", "data-size", "data-encoding", "data-mean_image"} <= names
    assert {"dataset-name", "dataset-visibility", "dataset-team"} <= names
    assert client.get("/datasets/new/no-such-type/").status_code == 404


def test_creation_form_shows_errors_next_to_their_fields(client, people):
    client.force_login(people.owner)
    response = client.post(
        "/datasets/new/test-squares/",
        {"data-count": "0", "data-size": "16", "dataset-name": "", "dataset-visibility": "team",
         "dataset-max_error_percent": "10", "dataset-processes": "1"},
    )  # fmt: skip
    assert response.status_code == 200
    html = response.content.decode()

    def block(name):  # from the field's input to the next field's
        start = html.index(f'name="{name}"')
        following = html.find('name="', start + len(name) + 7)
        return html[start:following]

    assert "greater than or equal to 1" in block("data-count")
    assert "This field is required." in block("dataset-name")
    assert "Choose the team to share with." in block("dataset-team")
    assert "invalid-feedback" not in block("data-size")
    assert not Dataset.objects.exists()


def test_creation_form_creates_a_dataset_that_a_worker_builds(client, people, start_worker):
    start_worker()
    client.force_login(people.team_member)
    response = client.post(
        "/datasets/new/test-squares/",
        {"data-count": "10", "data-size": "8", "data-encoding": "png", "dataset-name": "form made",
         "dataset-description": "from the form", "dataset-visibility": "team",
         "dataset-team": str(people.team.pk), "dataset-max_error_percent": "10",
         "dataset-processes": "1"},
    )  # fmt: skip
    dataset = Dataset.objects.get(name="form made")
    assert response.status_code == 302 and response["Location"] == f"/datasets/{dataset.pk}/"
    assert dataset.options == {
        "count": 10, "size": 8, "include_bad": False, "encoding": "png", "mean_image": False,
    }  # fmt: skip
    assert (dataset.owner, dataset.team, dataset.visibility) == (
        people.team_member, people.team, "team",
    )  # fmt: skip
    dataset = finished(dataset)
    assert dataset.status == "ready", dataset.job.error
    client.force_login(people.team_viewer)  # shared with the team
    html = client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert '<td data-stage="train">8</td>' in html and '<td data-stage="val">2</td>' in html


# --- the dataset page -----------------------------------------------------------------
def test_dataset_page_shows_counts_chart_mean_image_samples_and_files(client, people, squares):
    client.force_login(people.owner)
    response = client.get(f"/datasets/{squares.pk}/")
    html = response.content.decode()
    assert '<td data-stage="train">16</td>' in html and '<td data-stage="val">4</td>' in html
    assert "vendor/chartjs/chart.umd.min.js" in html and "digits/datasets.js" in html

    page = Page(html)
    (chart,) = page.find("script", id="class-distribution-data")
    assert json.loads(chart["text"]) == {
        "classes": ["even", "odd"],
        "stages": [{"stage": "train", "counts": [8, 8]}, {"stage": "val", "counts": [2, 2]}],
    }
    assert page.find("canvas", id="class-distribution")

    (mean_img,) = page.find("img", id="mean-image")
    mean = png(client.get(mean_img["src"]))
    assert mean.size == (16, 16)
    expected = np.round(np.load(shards.local_copy(squares, "mean.npy"))).astype(np.uint8)
    assert np.array_equal(np.asarray(mean), expected[:, :, 0])

    # samples: a row per class, each image an entry of that class
    rows = page.find("tr", data_label="0") + page.find("tr", data_label="1")
    assert len(rows) == 2
    table = html[html.index('id="class-samples"') :]
    table = table[: table.index("</table>")]
    for label, name in [(0, "even"), (1, "odd")]:
        row = table[table.index(f'data-label="{label}"') :]
        row = row[: row.index("</tr>")]
        assert f"{name} (8)" in row
        assert f"?stage=train&amp;label={label}" in row
        samples = entries_in(row, squares)
        assert len(samples) == views.SAMPLES_PER_CLASS
        assert all(stage == "train" for stage, _ in samples)
        assert {shards.read_entry(squares, "train", i)[1] for _, i in samples} == {label}

    # the dataset's own files
    links = {a["text"]: a["href"] for a in page.find("a") if a.get("href", "").count("/files/")}
    assert set(links) == {"manifest.json", "labels.txt", "errors.json", "mean.png", "mean.npy"}

    def download(name):
        response = client.get(links[name])
        assert response.status_code == 200
        assert f'filename="{name}"' in response["Content-Disposition"]
        return b"".join(response.streaming_content)

    assert json.loads(download("manifest.json")) == squares.manifest
    assert download("labels.txt") == b"even\nodd\n"
    assert json.loads(download("errors.json")) == []
    assert client.get(f"/datasets/{squares.pk}/files/secret_key").status_code == 404
    assert client.get(f"/datasets/{squares.pk}/files/train__labels-00000.npy").status_code == 404


# --- explore --------------------------------------------------------------------------
def gallery(client, dataset, **query):
    response = client.get(f"/datasets/{dataset.pk}/explore/", query)
    assert response.status_code == 200
    page = Page(response.content.decode())
    figures = [f for f in page.find("figure") if "data-index" in f]
    captions = [c["text"] for c in page.find("figcaption")]
    return page, figures, captions


def test_explore_filters_by_class_and_shows_the_entries(client, people, squares, monkeypatch):
    client.force_login(people.owner)
    page, figures, captions = gallery(client, squares, stage="train", label=1)
    indices = [int(f["data-index"]) for f in figures]
    assert indices == [1, 3, 5, 7, 9, 11, 13, 15]
    assert [img["src"] for img in page.find("img")] == [
        entry_url(squares, "train", i) for i in indices
    ]
    assert all(f["data-label"] == "1" for f in figures)
    assert captions == [f"#{i} · odd" for i in indices]
    assert {shards.read_entry(squares, "train", i)[1] for i in indices} == {1}

    _, figures, captions = gallery(client, squares, stage="val", label=0)
    assert [int(f["data-index"]) for f in figures] == [0, 2]  # val entries 16 and 18
    assert captions == ["#0 · even", "#2 · even"]

    _, figures, captions = gallery(client, squares)  # every class, train by default
    assert len(figures) == 16 and captions[:3] == ["#0 · even", "#1 · odd", "#2 · even"]

    # paging keeps the filter
    monkeypatch.setattr(views, "GALLERY_PAGE", 3)
    page, figures, _ = gallery(client, squares, stage="train", label=1, page=2)
    assert [int(f["data-index"]) for f in figures] == [7, 9, 11]
    hrefs = [a["href"] for a in page.find("a", **{"class": "page-link"})]
    assert hrefs == ["?stage=train&label=1&page=1", "?stage=train&label=1&page=3"]
    (selected,) = [o for o in page.find("option") if "selected" in o]
    assert (selected["value"], selected["text"]) == ("1", "odd (8)")

    # unknown stages and classes
    url = f"/datasets/{squares.pk}/explore/"
    assert client.get(url, {"stage": "bogus"}).status_code == 404
    assert client.get(url, {"label": "odd"}).status_code == 404
    _, figures, _ = gallery(client, squares, label=7)
    assert figures == []

    # each image is the entry's picture, at the dataset's size
    image = png(client.get(entry_url(squares, "train", 5)))
    assert image.size == (16, 16)
    pixels = np.asarray(image.convert("L"))
    assert pixels[:6, :6].min() == 255 and pixels[6:, 6:].max() == 0  # side 1 + 5 % 8
    assert client.get(entry_url(squares, "train", 16)).status_code == 404
    assert client.get(entry_url(squares, "test", 0)).status_code == 404
    assert client.get(entry_url(squares, "bogus", 0)).status_code == 404


def test_masks_have_no_class_filter_and_show_overlays(client, people, masks):
    client.force_login(people.owner)
    page, figures, captions = gallery(client, masks, label=1)  # the class is ignored
    assert [int(f["data-index"]) for f in figures] == list(range(6))
    assert all("data-label" not in f for f in figures)
    assert captions == [f"#{i}" for i in range(6)]
    assert not page.find("form", id="class-filter")

    image = np.asarray(png(client.get(entry_url(masks, "train", 5))))
    assert image.shape == (8, 10, 3)
    assert not np.array_equal(image[0, 0], image[7, 9])  # masked corner tinted, the other not

    html = client.get(f"/datasets/{masks.pk}/").content.decode()
    assert "class-distribution" not in html and 'id="mean-image"' not in html
    assert entries_in(html, masks) == [("train", i) for i in range(6)]
    assert client.get(f"/datasets/{masks.pk}/mean.png").status_code == 404


# --- who sees what --------------------------------------------------------------------
def dataset_urls(dataset):
    return [
        f"/datasets/{dataset.pk}/",
        f"/datasets/{dataset.pk}/explore/",
        f"/datasets/{dataset.pk}/explore/?stage=train&label=1",
        entry_url(dataset, "train", 0),
        f"/datasets/{dataset.pk}/mean.png",
        f"/datasets/{dataset.pk}/files/manifest.json",
    ]


def test_a_private_dataset_is_404_to_everybody_but_its_owner(client, people, squares):
    client.force_login(people.owner)
    for url in dataset_urls(squares):
        assert client.get(url).status_code == 200, url
    for user in (people.other, people.team_viewer, people.team_admin):  # not shared with the team
        client.force_login(user)
        for url in dataset_urls(squares):
            assert client.get(url).status_code == 404, (user, url)
        assert client.post(f"/datasets/{squares.pk}/delete/").status_code == 404
    assert Dataset.objects.filter(pk=squares.pk).exists()
    client.logout()
    response = client.get(f"/datasets/{squares.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_building_dataset_has_a_page_but_nothing_to_explore(client, people):
    dataset = services.create(
        owner=people.owner, type_id="test-squares", name="later", options={"count": 4, "size": 8}
    )
    client.force_login(people.owner)
    response = client.get(f"/datasets/{dataset.pk}/")
    assert response.status_code == 200 and b"Building" in response.content
    assert b"/explore/" not in response.content
    for url in dataset_urls(dataset)[1:]:
        assert client.get(url).status_code == 404, url


# --- delete ---------------------------------------------------------------------------
def test_delete_is_refused_while_a_model_uses_the_dataset(client, people, masks):
    model = TrainedModel.objects.create(owner=people.owner, name="lenet", dataset=masks)
    client.force_login(people.owner)
    response = client.post(f"/datasets/{masks.pk}/delete/", follow=True)
    assert response.redirect_chain == [(f"/datasets/{masks.pk}/", 302)]
    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["Models were trained on this dataset (lenet); delete them first."]
    assert "Models were trained on this dataset (lenet)" in response.content.decode()
    assert Dataset.objects.filter(pk=masks.pk).exists()

    model.delete()
    response = client.post(f"/datasets/{masks.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Dataset.objects.filter(pk=masks.pk).exists()
    assert not Job.objects.filter(pk=masks.job_id).exists()


def test_only_those_who_may_delete_see_the_button(client, people, masks):
    masks.team, masks.visibility = people.team, "team"
    masks.save()
    client.force_login(people.team_member)
    assert (
        f"/datasets/{masks.pk}/delete/" not in client.get(f"/datasets/{masks.pk}/").content.decode()
    )
    assert client.post(f"/datasets/{masks.pk}/delete/").status_code == 403
    client.force_login(people.team_admin)
    assert f"/datasets/{masks.pk}/delete/" in client.get(f"/datasets/{masks.pk}/").content.decode()


# --- the list ---------------------------------------------------------------------------
def test_the_dataset_list_pages_and_filters_what_the_user_may_see(client, people, monkeypatch):
    def make(owner, name, **fields):
        return Dataset.objects.create(owner=owner, name=name, type="test-squares", **fields)

    manifest = {"stages": {"train": {"count": 1200}, "val": {"count": 300}},
                "label_names": ["even", "odd"]}  # fmt: skip
    make(people.owner, "built", status="ready", manifest=manifest)
    make(people.owner, "broken", status="error")
    make(people.owner, "stopped", status="aborted")
    make(people.other, "theirs", status="ready")
    make(people.other, "shared", status="ready", visibility="public")
    client.force_login(people.owner)

    def names(**query):
        page = client.get("/datasets/", query).content.decode()
        table = page.split('id="dataset-table"', 1)[1].split("</table>", 1)[0]
        return re.findall(r'<a href="/datasets/\d+/">([^<]+)</a>', table), page

    found, page = names()
    assert found == ["shared", "stopped", "broken", "built"]  # newest first; not "theirs"
    row = page.split(">built</a>", 1)[1].split("</tr>", 1)[0]
    assert re.findall(r'<td class="text-end">([^<]*)</td>', row) == ["1,200", "300", "0", "2"]
    assert names(status="error")[0] == ["broken"]
    assert names(type="images")[0] == []
    monkeypatch.setattr(views, "LIST_PAGE", 3)
    found, page = names(status="", page=2)
    assert found == ["built"] and "Page 2 of 2" in page
    found, page = names(type="test-squares")
    assert len(found) == 3 and 'href="?type=test-squares&amp;page=2"' in page
