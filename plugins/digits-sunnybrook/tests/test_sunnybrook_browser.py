"""A real browser uploads a Sunnybrook archive and explores image, mask and overlay.

Headless Debian Chromium driven by Playwright against the platform run as separate
processes (uvicorn and a job worker): the new-dataset form with the archive source, the
tar through the file input, the dataset page's note on the split, and the explore page,
whose three pictures per entry must all have loaded, the mask in the ventricle's colour.
"""

from __future__ import annotations

import pytest
from digits_sunnybrook.testing import make_tree
from sunnybrook_helpers import archive_members, make_tar

from apps.datasets.models import Dataset
from tests.browser.helpers import run_with_browser, watched_page
from tests.conftest import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

#: The red of the ventricle's colour (230, 25, 75) in the mask picture, counted in a canvas.
RED_PIXELS = """img => {
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0);
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let red = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i] === 230 && data[i + 1] === 25) red++;
    return red;
}"""


def submit(browser, base_url: str, archive: str, username: str, password: str) -> dict:
    """Fill the new-dataset form with the archive; what the form page said."""

    seen = {"console_errors": [], "bad_responses": []}
    page = watched_page(browser, seen, base_url, username, password)
    page.goto(base_url + "/datasets/new/image-sunnybrook/")
    seen["split_text"] = page.locator("#sunnybrook-split").text_content()
    page.select_option("#id_data-source", "archive")
    page.set_input_files("#id_data-archive", archive)
    page.fill("#id_data-val_percent", "50")
    page.fill("#id_dataset-name", "LV in the browser")
    with page.expect_navigation():
        page.click("form[enctype='multipart/form-data'] button[type=submit]")
    assert "/datasets/new/" not in page.url, "the form was refused: " + "; ".join(
        page.locator(".invalid-feedback, .alert-danger").all_text_contents()
    )
    seen["detail"] = page.url
    return seen


def explore(browser, detail: str, base_url: str, username: str, password: str) -> dict:
    """The built dataset's page and its explore page, as the browser shows them."""

    seen = {"console_errors": [], "bad_responses": []}
    page = watched_page(browser, seen, base_url, username, password)
    page.goto(detail)
    seen["notes"] = page.locator("#dataset-notes").text_content()
    with page.expect_navigation():
        page.click("a:text-is('Explore')")
    figures = page.locator("#gallery figure")
    figures.first.wait_for()
    seen["figures"] = figures.count()
    images = page.locator("#gallery img")
    for i in range(images.count()):  # lazy images load once scrolled into view
        images.nth(i).scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gallery img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    first = figures.first.locator("img")
    seen["parts"] = first.evaluate_all("imgs => imgs.map(img => img.dataset.part)")
    seen["sizes"] = images.evaluate_all(
        "imgs => imgs.map(img => [img.naturalWidth, img.naturalHeight])"
    )
    seen["red"] = [first.nth(i).evaluate(RED_PIXELS) for i in range(3)]
    return seen


def test_an_archive_uploaded_in_the_browser_is_explored_as_image_mask_and_overlay(
    transactional_db, django_user_model, start_worker, live_server_url, tmp_path
):
    django_user_model.objects.create_user("lena", password="browser-pw-9")
    tree = make_tree(tmp_path / "export", cases=("SC-N-2", "SC-N-3"), slices=2)
    archive = tmp_path / "scd.tar.gz"
    archive.write_bytes(make_tar(archive_members(tree)))
    start_worker()

    form = run_with_browser(
        lambda browser: submit(browser, live_server_url, str(archive), "lena", "browser-pw-9")
    )
    assert "by case (patient), never by" in " ".join(form["split_text"].split())
    dataset = wait_until(
        lambda: Dataset.objects.exclude(status="building").filter(name="LV in the browser").first(),
        timeout=150, message="the dataset was not built",
    )  # fmt: skip
    assert dataset.status == "ready", dataset.job.error
    assert form["detail"].endswith(f"/datasets/{dataset.pk}/")

    seen = run_with_browser(
        lambda browser: explore(browser, form["detail"], live_server_url, "lena", "browser-pw-9")
    )
    assert "Split by case (patient), never by slice" in seen["notes"]
    assert seen["figures"] == 2  # the train stage: the 2 slices of one case
    assert seen["parts"] == ["image", "mask", "overlay"]
    assert seen["sizes"] == [[32, 32]] * 6
    image_red, mask_red, _ = seen["red"]  # (the overlay blends the colour)
    assert image_red == 0 and mask_red > 50  # the mask alone, in the ventricle's colour
    for session in (form, seen):
        assert session["console_errors"] == [] and session["bad_responses"] == []
