"""The datasets REST API: list, retrieve, change, delete, create (JSON and multipart), types."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from apps.datasets.models import Dataset
from apps.mlmodels.models import TrainedModel
from tests.datasets.test_build import finished

URL = "/api/v1/datasets/"
OPTIONS = {"count": 10, "size": 8, "encoding": "png", "mean_image": True}


pytestmark = pytest.mark.usefixtures("fresh_cache")


def make(owner, name, visibility="private", team=None, **extra):
    """A dataset row (no build job): enough for listing, sharing and deleting."""
    fields = {"type": "test-squares", "status": "ready", **extra}
    return Dataset.objects.create(
        owner=owner, name=name, visibility=visibility, team=team, **fields
    )


@pytest.fixture
def catalogue(people):
    return {
        "private": make(people.owner, "private"),
        "team": make(people.owner, "team", "team", people.team),
        "public": make(people.other, "public", "public"),
        "others-private": make(people.other, "others-private"),
    }


def names(response):
    assert response.status_code == 200, response.content
    return sorted(d["name"] for d in response.json()["results"])


# --- reading --------------------------------------------------------------------------
def test_list_shows_only_the_datasets_a_user_may_see(api_client, people, catalogue):
    assert names(api_client.as_user(people.owner).get(URL)) == ["private", "public", "team"]
    assert names(api_client.as_user(people.team_viewer).get(URL)) == ["public", "team"]
    assert names(api_client.as_user(people.other).get(URL)) == ["others-private", "public"]
    assert len(names(api_client.as_user(people.staff).get(URL))) == 4
    api_client.credentials()
    assert api_client.get(URL).status_code in (401, 403)


def test_list_filters_by_status_and_type(api_client, people, catalogue):
    make(people.owner, "broken", status="error")
    client = api_client.as_user(people.owner)
    assert names(client.get(URL, {"status": "error"})) == ["broken"]
    assert names(client.get(URL, {"type": "images"})) == []


def test_retrieve_includes_the_manifest_and_the_list_does_not(api_client, people):
    manifest = {"stages": {"train": {"count": 3}, "val": {"count": 1}}, "label_names": ["a"]}
    dataset = make(people.owner, "with manifest", manifest=manifest, options={"count": 4})
    client = api_client.as_user(people.owner)
    data = client.get(f"{URL}{dataset.pk}/").json()
    assert data["manifest"] == manifest
    assert data["counts"] == {"train": 3, "val": 1}
    assert data["options"] == {"count": 4}
    assert (data["type"], data["owner"], data["status"]) == ("test-squares", "olivia", "ready")
    (listed,) = client.get(URL).json()["results"]
    assert "manifest" not in listed and listed["counts"] == {"train": 3, "val": 1}
    assert api_client.as_user(people.other).get(f"{URL}{dataset.pk}/").status_code == 404


# --- changing -------------------------------------------------------------------------
def test_owner_renames_and_shares_a_dataset(api_client, people, catalogue):
    dataset = catalogue["private"]
    client = api_client.as_user(people.owner)
    response = client.patch(
        f"{URL}{dataset.pk}/",
        {"name": "renamed", "visibility": "team", "team": "vision", "status": "error"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["team"]) == ("renamed", "vision")
    dataset.refresh_from_db()
    assert (dataset.name, dataset.visibility, dataset.team) == ("renamed", "team", people.team)
    assert dataset.status == "ready"  # read-only
    assert "renamed" in names(api_client.as_user(people.team_viewer).get(URL))


def test_sharing_rules(api_client, people, catalogue):
    url = f"{URL}{catalogue['private'].pk}/"
    owner = api_client.as_user(people.owner)
    response = owner.patch(url, {"visibility": "team"}, format="json")
    assert response.status_code == 400 and "team" in response.json()
    # oscar is in no team: he cannot move his dataset into one
    response = api_client.as_user(people.other).patch(
        f"{URL}{catalogue['others-private'].pk}/", {"team": "vision"}, format="json"
    )
    assert response.status_code == 400 and "team" in response.json()

    shared = catalogue["team"]
    url = f"{URL}{shared.pk}/"
    assert api_client.as_user(people.team_viewer).patch(url, {"name": "x"}).status_code == 403
    assert api_client.as_user(people.team_member).patch(url, {"name": "by mia"}).status_code == 200
    assert api_client.as_user(people.team_member).delete(url).status_code == 403
    assert api_client.as_user(people.other).patch(url, {"name": "x"}).status_code == 404
    assert api_client.as_user(people.team_admin).delete(url).status_code == 204
    assert not Dataset.objects.filter(pk=shared.pk).exists()


# --- deleting -------------------------------------------------------------------------
def test_delete_is_refused_with_409_while_a_model_uses_the_dataset(api_client, people, catalogue):
    dataset = catalogue["private"]
    model = TrainedModel.objects.create(owner=people.owner, name="resnet", dataset=dataset)
    client = api_client.as_user(people.owner)
    response = client.delete(f"{URL}{dataset.pk}/")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "Models were trained on this dataset (resnet); delete them first."
    )
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    model.delete()
    assert client.delete(f"{URL}{dataset.pk}/").status_code == 204
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    assert client.get(f"{URL}{dataset.pk}/").status_code == 404


def test_a_building_dataset_cannot_be_deleted(api_client, people):
    client = api_client.as_user(people.owner)
    response = client.post(
        URL, {"type": "test-squares", "name": "building", "options": OPTIONS}, format="json"
    )
    pk = response.json()["id"]
    response = client.delete(f"{URL}{pk}/")
    assert response.status_code == 409 and "still building" in response.json()["detail"]


# --- creating -------------------------------------------------------------------------
def assert_built(client, pk, options):
    dataset = finished(Dataset.objects.get(pk=pk))
    assert dataset.status == "ready", dataset.job.error
    data = client.get(f"{URL}{pk}/").json()
    assert data["status"] == "ready"
    assert data["counts"] == {"train": 8, "val": 2, "test": 0}
    assert data["options"] == {"include_bad": False, **options}
    manifest = data["manifest"]
    assert manifest["feature"]["shape"] == [8, 8, 1] and manifest["encoding"] == "png"
    assert manifest["stages"]["train"]["class_counts"] == {"0": 4, "1": 4}
    assert manifest["mean"]["png"] == "mean.png"


def test_create_by_json_builds_the_dataset(api_client, people, start_worker):
    start_worker()
    client = api_client.as_user(people.owner)
    response = client.post(
        URL,
        {"type": "test-squares", "name": "by json", "description": "d", "options": OPTIONS,
         "processes": 1},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["name"], created["status"], created["visibility"]) == (
        "by json", "building", "private",
    )  # fmt: skip
    assert created["job"] is not None
    assert_built(client, created["id"], OPTIONS)


def test_create_by_multipart_takes_options_as_a_json_string(api_client, people, start_worker):
    start_worker()
    client = api_client.as_user(people.team_member)
    response = client.post(
        URL,
        {"type": "test-squares", "name": "by form", "options": json.dumps(OPTIONS),
         "visibility": "team", "team": "vision", "processes": "1"},
        format="multipart",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json()["team"] == "vision"
    assert_built(client, response.json()["id"], OPTIONS)
    assert "by form" in names(api_client.as_user(people.team_viewer).get(URL))


@pytest.mark.parametrize(
    ("body", "field", "inside"),
    [
        ({"type": "no-such-type"}, "type", "no-such-type"),
        ({"options": {**OPTIONS, "count": 0}}, "options", "count"),
        ({"options": {**OPTIONS, "encoding": "gif"}}, "options", "encoding"),
        ({"options": {"size": 8}}, "options", "count"),  # required
        ({"options": ["count", 3]}, "options", "JSON object"),
        ({"visibility": "team"}, "team", "team"),
        ({"visibility": "team", "team": "nope"}, "team", "nope"),
        ({"processes": 0}, "processes", "greater than or equal to 1"),
        ({"name": ""}, "name", "blank"),
    ],
)
def test_create_errors_name_the_field(api_client, people, body, field, inside):
    request = {"type": "test-squares", "name": "bad", "options": OPTIONS, **body}
    response = api_client.as_user(people.owner).post(URL, request, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field]
    assert inside in json.dumps(errors[field])
    assert not Dataset.objects.exists()


def test_create_multipart_with_options_that_are_not_json(api_client, people):
    response = api_client.as_user(people.owner).post(
        URL, {"type": "test-squares", "name": "bad", "options": "{count: 3"}, format="multipart"
    )
    assert response.status_code == 400 and list(response.json()) == ["options"]


@pytest.mark.parametrize(("who", "allowed"), [("team_viewer", False), ("team_member", True)])
def test_only_members_create_datasets_in_a_team(api_client, people, who, allowed):
    response = api_client.as_user(getattr(people, who)).post(
        URL,
        {"type": "test-squares", "name": "shared", "options": OPTIONS, "visibility": "team",
         "team": "vision"},
        format="json",
    )  # fmt: skip
    if allowed:
        assert response.status_code == 201, response.content
        assert Dataset.objects.get().team == people.team
    else:
        assert response.status_code == 400 and list(response.json()) == ["team"]
        assert not Dataset.objects.exists()


# --- types ----------------------------------------------------------------------------
def test_dataset_types_list_the_test_plugin_with_its_options(api_client, people):
    response = api_client.as_user(people.other).get("/api/v1/dataset-types/")
    assert response.status_code == 200
    (squares,) = [t for t in response.json() if t["id"] == "test-squares"]
    assert (squares["title"], squares["category"]) == ("Test squares", "Test")
    options = squares["options"]
    assert list(options) == ["count", "size", "include_bad", "encoding", "mean_image"]
    assert options["count"] == {
        "type": "IntegerField", "required": True, "help_text": "", "initial": 20,
    }  # fmt: skip
    assert options["encoding"]["choices"] == ["", "png", "jpg", "none"]
    assert options["include_bad"]["required"] is False


# --- a built dataset's entries, images and files -----------------------------------------
def test_entries_are_paged_filtered_by_class_and_link_their_images(api_client, people, squares):
    client = api_client.as_user(people.owner)
    url = f"{URL}{squares.pk}/entries/"
    page = client.get(url, {"stage": "train", "label": 1, "page_size": 3, "page": 2}).json()
    assert page["count"] == 8
    assert [e["index"] for e in page["results"]] == [7, 9, 11]
    assert {(e["label"], e["label_name"]) for e in page["results"]} == {(1, "odd")}
    assert "page=3" in page["next"] and "page=" not in page["previous"].replace("page_size=", "")
    assert all(
        "label=1" in link and "stage=train" in link for link in (page["next"], page["previous"])
    )

    everything = client.get(url).json()  # train, every class, 100 per page
    assert everything["count"] == 16 and everything["next"] is None
    assert [e["label"] for e in everything["results"][:3]] == [0, 1, 0]
    val = client.get(url, {"stage": "val", "label": 0}).json()
    assert [e["index"] for e in val["results"]] == [0, 2]
    assert client.get(url, {"label": 7}).json()["count"] == 0

    # Each entry's image: the PNG the explore page shows, through the API's authentication.
    image_url = everything["results"][5]["image"]
    assert image_url.endswith(f"/api/v1/datasets/{squares.pk}/entries/train/5/image/")
    reply = client.get(image_url)
    assert reply.status_code == 200 and reply["Content-Type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(reply.content)).convert("L"))
    assert pixels.shape == (16, 16)
    assert pixels[:6, :6].min() == 255 and pixels[6:, 6:].max() == 0  # side 1 + 5 % 8
    assert client.get(f"{URL}{squares.pk}/entries/train/16/image/").status_code == 404


def test_entry_queries_name_the_bad_parameter(api_client, people, squares, masks):
    client = api_client.as_user(people.owner)
    url = f"{URL}{squares.pk}/entries/"
    assert "stage" in client.get(url, {"stage": "bogus"}).json()
    assert "label" in client.get(url, {"label": "odd"}).json()
    assert client.get(url, {"page": 99}).status_code == 404
    reply = client.get(f"{URL}{masks.pk}/entries/", {"label": 1})
    assert reply.status_code == 400 and "masks" in reply.json()["label"][0]
    assert client.get(f"{URL}{masks.pk}/entries/").json()["results"][0]["label"] is None


def test_dataset_files_download_through_the_api(api_client, people, squares, masks):
    client = api_client.as_user(people.owner)
    reply = client.get(f"{URL}{squares.pk}/files/labels.txt/")
    assert reply.status_code == 200
    assert b"".join(reply.streaming_content).decode().split() == ["even", "odd"]
    manifest = json.loads(b"".join(client.get(f"{URL}{squares.pk}/files/manifest.json/")))
    assert manifest == Dataset.objects.get(pk=squares.pk).manifest
    mean = client.get(f"{URL}{squares.pk}/files/mean.png/")
    assert mean["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(b"".join(mean.streaming_content))).size == (16, 16)
    assert client.get(f"{URL}{masks.pk}/files/mean.png/").status_code == 404  # it has none
    assert client.get(f"{URL}{squares.pk}/files/settings.py/").status_code == 404


def test_entries_of_others_private_and_unbuilt_datasets(api_client, people, squares):
    urls = [
        f"{URL}{squares.pk}/entries/",
        f"{URL}{squares.pk}/entries/train/0/image/",
        f"{URL}{squares.pk}/files/manifest.json/",
    ]
    for user in (people.other, people.team_viewer):
        client = api_client.as_user(user)
        assert [client.get(u).status_code for u in urls] == [404, 404, 404], user
    building = make(people.owner, "building", status="building")
    client = api_client.as_user(people.owner)
    reply = client.get(f"{URL}{building.pk}/entries/")
    assert reply.status_code == 409 and "not built" in reply.json()["detail"]
