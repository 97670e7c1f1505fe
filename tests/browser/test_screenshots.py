"""Screenshots of the main pages — desktop, phone and dark — taken in a real browser.

The test checks what they show (a phone shot is 390 px wide, a dark shot is dark, a light
one light); with ``DIGITS_SCREENSHOTS_DIR`` set (``scripts/screenshots.py``) it also
writes them there, for docs/screenshots/ and the README."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.browser.helpers import log_in, run_with_browser, wait_visible
from tests.browser.portal import PASSWORD, USERNAME, make_portal

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: (file name, page, viewport, colour scheme, open the phone menu first)
SHOTS = [
    ("home-desktop", "/", DESKTOP, "light", False),
    ("dataset-desktop", "/datasets/{dataset}/", DESKTOP, "light", False),
    ("model-desktop", "/models/{model}/", DESKTOP, "light", False),
    ("new-model-desktop", "/models/new/", DESKTOP, "light", False),
    ("evaluation-desktop", "/evaluations/{evaluation}/", DESKTOP, "light", False),
    ("home-phone-menu", "/", PHONE, "light", True),
    ("model-phone", "/models/{model}/", PHONE, "light", False),
    ("datasets-phone", "/datasets/", PHONE, "light", False),
    ("model-dark", "/models/{model}/", DESKTOP, "dark", False),
    ("dataset-phone-dark", "/datasets/{dataset}/", PHONE, "dark", False),
]
#: The mean brightness (0–255) of the page's background, as the browser paints it.
BACKGROUND = "() => getComputedStyle(document.body).backgroundColor"


def shoot(browser, base_url: str, ids: dict, folder: Path) -> dict:

    found = {}
    # Log in once; each shot's context (its own viewport and colour scheme) starts
    # with that session's cookies.
    context = browser.new_context()
    log_in(context.new_page(), base_url, USERNAME, PASSWORD)
    session = context.storage_state()
    context.close()
    for name, path, viewport, scheme, menu in SHOTS:
        context = browser.new_context(viewport=viewport, color_scheme=scheme, storage_state=session)
        page = context.new_page()
        page.goto(base_url + path.format(**ids), wait_until="networkidle")
        if menu:
            page.locator(".navbar-toggler").click()
            wait_visible(page, "#main-nav.show")
        file = folder / f"{name}.png"
        page.screenshot(path=str(file))
        found[name] = {"background": page.evaluate(BACKGROUND), "size": file.stat().st_size,
                       "width": page.evaluate("window.innerWidth")}  # fmt: skip
        context.close()
    return found


def brightness(css_colour: str) -> float:
    r, g, b = (int(v) for v in css_colour[css_colour.index("(") + 1 : -1].split(",")[:3])
    return (r + g + b) / 3


def test_screenshots_of_the_main_pages(
    transactional_db, django_user_model, live_server_url, tmp_path
):
    ids = make_portal(django_user_model)

    found = run_with_browser(
        lambda browser: shoot(browser, live_server_url, ids, tmp_path), timeout=280
    )

    for name, shot in found.items():
        assert 5_000 < shot["size"] < 400_000, (name, shot)
        dark = "dark" in name
        assert (brightness(shot["background"]) < 60) == dark, (name, shot)
        assert shot["width"] == (390 if "phone" in name else 1280), (name, shot)
    target = os.environ.get("DIGITS_SCREENSHOTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for file in tmp_path.glob("*.png"):
            shutil.copy(file, Path(target) / file.name)
