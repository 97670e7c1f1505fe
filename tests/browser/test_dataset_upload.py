"""A real browser creates an image classification dataset from an uploaded zip.

Headless Debian Chromium driven by Playwright (sync API) against the platform run as
separate processes on the test database: uvicorn (HTTP + websockets) and a job worker.
The browser logs in, fills the new-dataset form with the archive source, uploads a zip
of scikit-learn's handwritten digits (one folder per class) through the file input and
submits; on the dataset page it watches the build job's progress bar move without a
reload, then lets the page reload itself when the build is done and opens Explore,
whose images must have loaded.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from apps.core.storage import get_store
from apps.datasets.models import Dataset
from tests.browser.helpers import (
    progress_value,
    run_with_browser,
    watched_page,
)
from tests.conftest import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PER_CLASS = 50  # 10 classes: 500 images
SIDE = 512  # the dataset's images: enough work per image to watch the build move


def digits_zip(path, per_class: int = PER_CLASS) -> dict[int, int]:
    """``path``: a zip of ``digits/<digit>/img_NNNN.png``; returns images per class."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.round(data.images * 255.0 / 16.0).astype(np.uint8)
    counts: dict[int, int] = {}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for index, digit in enumerate(data.target.tolist()):
            if counts.get(digit, 0) >= per_class:
                continue
            counts[digit] = counts.get(digit, 0) + 1
            out = io.BytesIO()
            Image.fromarray(images[index]).save(out, format="PNG")
            zf.writestr(f"digits/{digit}/img_{index:04d}.png", out.getvalue())
    return counts


def create_and_watch(browser, base_url: str, archive: str, username: str, password: str) -> dict:
    from playwright.sync_api import Error as PlaywrightError

    seen: dict = {
        "progress": [], "texts": [], "console_errors": [], "bad_responses": [],
    }  # fmt: skip
    page = watched_page(browser, seen, base_url, username, password)

    # --- the form: archive source, the zip through the file input ------------
    page.goto(base_url + "/datasets/new/image-classification/")
    page.select_option("#id_data-source", "archive")
    page.locator('[data-imageclass-source="archive"]').wait_for(state="visible")
    page.set_input_files("#id_data-archive", archive)
    page.select_option("#id_data-image_type", "grayscale")
    page.fill("#id_data-width", str(SIDE))
    page.fill("#id_data-height", str(SIDE))
    page.fill("#id_data-val_percent", "20")
    page.fill("#id_dataset-name", "uploaded digits")
    page.fill("#id_dataset-description", "zip through the browser")
    # One encoding process: the build lasts long enough to watch it move.
    page.fill("#id_dataset-processes", "1")
    with page.expect_navigation():  # (the navbar's log-out form has a button too)
        page.click("form[enctype='multipart/form-data'] button[type=submit]")
    seen["detail_url"] = page.url
    assert "/datasets/new/" not in page.url, "the form was refused: " + "; ".join(
        page.locator(".invalid-feedback, .alert-danger").all_text_contents()
    )

    # --- the dataset page: the build job's progress, live ----------------------
    # A full load of the document would reset this marker: it proves no reload.
    page.evaluate("window.__noReload = true")
    bar = page.locator("#job .progress")
    text = page.locator("#job [data-role=status-text]")

    def still(expression: str) -> bool:
        try:
            return page.evaluate(expression)
        except PlaywrightError:  # the page is reloading right now
            return False

    def sample():
        if still("window.__noReload === true"):
            try:
                value, words = progress_value(bar), text.text_content().strip()
            except PlaywrightError:
                return
            seen["progress"].append(value)
            seen["texts"].append(words)

    def expect(predicate, timeout: float, what: str):
        try:
            wait_until(predicate, timeout=timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(
                f"{what} within {timeout} s; progress seen {sorted(set(seen['progress']))}, "
                f"texts {list(dict.fromkeys(seen['texts']))}"
            ) from None

    # The bar rises through at least two values strictly between 0 and 100.
    def moving():
        sample()
        return len({v for v in seen["progress"] if 0 < v < 100}) >= 2

    expect(moving, 120, "the dataset page's progress bar did not move")
    seen["moved_without_reload"] = still("window.__noReload === true")

    # When the build is done the page reloads itself: the marker is gone and the
    # page shows the built dataset.
    def reloaded():
        sample()
        return still("document.readyState !== 'loading' && window.__noReload === undefined")

    expect(reloaded, 180, "the dataset page did not reload itself when the build ended")
    page.wait_for_load_state()
    seen["status"] = page.locator("#dataset-status").text_content().strip()
    seen["counts"] = {
        stage: page.locator(f'#stage-counts td[data-stage="{stage}"]').text_content()
        for stage in ("train", "val", "test")
    }

    # --- Explore: the gallery's images have loaded ------------------------------
    with page.expect_navigation():
        page.click("a:text-is('Explore')")
    images = page.locator("#gallery img")
    images.first.wait_for()
    seen["gallery"] = images.count()
    for i in range(seen["gallery"]):  # lazy images load once scrolled into view
        images.nth(i).scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gallery img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    seen["sizes"] = images.evaluate_all(
        "imgs => imgs.map(img => [img.naturalWidth, img.naturalHeight])"
    )
    return seen


def test_a_zip_uploaded_in_the_browser_becomes_a_dataset_to_explore(
    transactional_db, django_user_model, start_worker, live_server_url, tmp_path
):
    django_user_model.objects.create_user("uma", password="browser-pw-3")
    archive = tmp_path / "digits.zip"
    counts = digits_zip(archive)
    assert sorted(counts) == list(range(10)) and set(counts.values()) == {PER_CLASS}
    start_worker()

    seen = run_with_browser(
        lambda browser: create_and_watch(
            browser, live_server_url, str(archive), "uma", "browser-pw-3"
        )
    )

    print("progress seen:", sorted(set(seen["progress"])), list(dict.fromkeys(seen["texts"])))
    dataset = Dataset.objects.get(name="uploaded digits")
    assert seen["detail_url"].endswith(f"/datasets/{dataset.pk}/")
    assert dataset.status == "ready", dataset.job.error
    assert dataset.job.params["processes"] == 1
    # The file input's zip reached the store, and was deleted once the build had used it.
    upload = dataset.options["archive"]
    assert upload["name"] == "digits.zip" and upload["size"] == archive.stat().st_size
    assert not get_store().exists(upload["upload_key"])
    progress = seen["progress"]
    assert progress == sorted(progress), progress  # it only ever rose
    assert len({v for v in progress if 0 < v < 100}) >= 2, progress
    assert seen["moved_without_reload"], "the page reloaded while the build was running"
    assert any(f"of {10 * PER_CLASS} entries" in t for t in seen["texts"]), seen["texts"]
    # 20 % of each class of 50 for validation: 10, the rest for training.
    assert seen["status"] == "Ready"
    assert seen["counts"] == {"train": "400", "val": "100", "test": "0"}
    assert dataset.manifest["feature"]["shape"] == [SIDE, SIDE, 1]
    assert dataset.manifest["label_names"] == [str(d) for d in range(10)]
    assert seen["gallery"] == 24  # a full page of the train stage
    assert seen["sizes"] == [[SIDE, SIDE]] * 24, seen["sizes"]  # loaded, each entry whole
    assert not seen["console_errors"], (seen["console_errors"], seen["bad_responses"])
