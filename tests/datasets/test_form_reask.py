"""A refused new-dataset form says at the file field that its archive must be chosen
again (files are not kept), instead of dropping it silently; fields it did not get keep
their own help."""

import io
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.models import Dataset

NEW = "/datasets/new/image-classification/"


def archive() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("a/1.png", b"not an image")
    return SimpleUploadedFile("digits.zip", buffer.getvalue(), content_type="application/zip")


def block(html: str, name: str) -> str:
    """A field's block: from its input to the next field's."""
    start = html.index(f'name="{name}"')
    return html[start : html.find('name="', start + len(name) + 7)]


def test_a_refused_form_asks_for_its_archive_again(client, people):
    client.force_login(people.owner)
    reply = client.post(
        NEW,
        {"data-source": "archive", "data-archive": archive(), "dataset-name": "",
         "dataset-visibility": "private", "dataset-max_error_percent": "10",
         "dataset-processes": "1"},
    )  # fmt: skip
    html = reply.content.decode()
    assert reply.status_code == 200 and not Dataset.objects.exists()
    assert "This field is required." in block(html, "dataset-name")
    assert "Choose this file again" in block(html, "data-archive")
    assert "Choose this file again" not in block(html, "data-val_archive")  # none was sent
