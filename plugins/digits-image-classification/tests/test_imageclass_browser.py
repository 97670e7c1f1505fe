"""The dataset page in a real browser: one source's fields at a time, and the live preview.

Headless Debian Chromium driven by Playwright, against the platform served by uvicorn.
"""

import numpy as np
import pytest
from imageclass_helpers import png_bytes

from tests.browser.helpers import log_in, run_with_browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SAMPLE = np.tile((np.arange(20) * 12).astype(np.uint8), (10, 1))  # 20 wide × 10 high


def use_the_form(browser, base_url: str, sample_path: str) -> dict:

    seen: dict = {"errors": []}
    page = browser.new_page()
    page.set_default_timeout(45_000)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    log_in(page, base_url, "iris", "browser-pw-1")
    page.goto(base_url + "/datasets/new/image-classification/")

    visible = "[data-imageclass-source]:not([hidden])"
    seen["sources"] = [page.get_attribute(visible, "data-imageclass-source")]
    page.select_option("#id_data-source", "archive")
    seen["sources"].append(page.get_attribute(visible, "data-imageclass-source"))

    page.fill("#id_data-width", "10")
    page.fill("#id_data-height", "10")
    page.select_option("#id_data-resize_mode", "crop")
    page.set_input_files("#imageclass-preview-sample", sample_path)
    result = page.locator("#imageclass-preview .imageclass-result")
    result.wait_for(state="visible")
    page.wait_for_function(
        "() => document.querySelector('#imageclass-preview .imageclass-result').naturalWidth === 10"
    )
    page.fill("#id_data-width", "14")
    page.wait_for_function(
        "() => document.querySelector('#imageclass-preview .imageclass-result').naturalWidth === 14"
    )
    seen["size"] = result.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    page.fill("#id_data-width", "0")
    message = page.locator("#imageclass-preview .imageclass-message")
    page.wait_for_function(
        "() => document.querySelector('#imageclass-preview .imageclass-message')"
        ".textContent.includes('width')"
    )
    seen["message"] = message.text_content()
    return seen


def test_the_form_switches_sources_and_previews_a_sample(
    transactional_db, django_user_model, live_server_url, tmp_path
):
    django_user_model.objects.create_user("iris", password="browser-pw-1")
    sample = tmp_path / "sample.png"
    sample.write_bytes(png_bytes(SAMPLE))
    seen = run_with_browser(lambda browser: use_the_form(browser, live_server_url, str(sample)))
    assert seen["errors"] == []
    assert seen["sources"] == ["folder", "archive"]
    assert seen["size"] == [14, 10]
    assert "width: Ensure this value is greater than or equal to 1." in seen["message"]
