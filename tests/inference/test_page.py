"""The classify page (server-rendered) shows the answer of the warm path."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.inference.helpers import make_model, png, val_entries

pytestmark = [pytest.mark.tensorflow, pytest.mark.timeout(600)]


def test_the_page_shows_probabilities_and_layers(people, client, inference_server):
    model, _ = make_model(people.owner)
    client.force_login(people.owner)
    image = SimpleUploadedFile("x.png", png(val_entries()[0][0]), content_type="image/png")
    reply = client.post(
        f"/models/{model.pk}/classify/", {"image": image, "layers": "1", "top_n": "3"}
    )
    page = reply.content.decode()
    assert reply.status_code == 200
    assert page.count('class="progress-bar"') == 3
    assert page.count('<tr class="layer">') == 7 and page.count('<svg class="histogram"') == 11
    reply = client.post(f"/models/{model.pk}/classify/", {"index": "2", "top_n": "x"})
    assert "top_n: a whole number" in reply.content.decode()
