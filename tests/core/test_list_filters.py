"""Each list is filtered by one FilterSet, on its page and in its API alike."""

import pytest

from apps.datasets.api.views import DatasetViewSet
from apps.datasets.filters import DatasetFilterSet
from apps.jobs.api.views import JobViewSet
from apps.jobs.filters import JobFilterSet
from apps.mlmodels.api.views import TrainedModelViewSet
from apps.mlmodels.filters import TrainedModelFilterSet
from tests.mlmodels.test_errors import ready_dataset


def test_the_viewsets_use_the_lists_filtersets():
    assert DatasetViewSet.filterset_class is DatasetFilterSet
    assert JobViewSet.filterset_class is JobFilterSet
    assert TrainedModelViewSet.filterset_class is TrainedModelFilterSet


def test_a_page_takes_every_filter_of_its_api(client, api_client, people):
    ready_dataset(people.owner, "only olivia sees it")
    ready_dataset(people.owner, "for everybody", visibility="public")
    client.force_login(people.owner)
    page = client.get("/datasets/", {"visibility": "public"}).content.decode()
    assert "for everybody" in page and "only olivia sees it" not in page
    api = api_client.as_user(people.owner)
    names = [
        d["name"] for d in api.get("/api/v1/datasets/", {"visibility": "public"}).json()["results"]
    ]
    assert names == ["for everybody"]


@pytest.mark.parametrize(
    ("page", "api", "query"),
    [
        ("/datasets/", "/api/v1/datasets/", {"status": "bogus"}),
        ("/jobs/", "/api/v1/jobs/", {"status": "bogus"}),
        ("/models/", "/api/v1/models/", {"dataset": "x"}),
    ],
)
def test_a_value_a_filter_cannot_take_is_404_on_the_page_and_400_in_the_api(
    client, api_client, people, page, api, query
):
    client.force_login(people.owner)
    assert client.get(page, query).status_code == 404
    assert api_client.as_user(people.owner).get(api, query).status_code == 400
