"""Every page on a phone (390×844): nothing scrolls sideways, the navigation opens from its
toggle with the current page marked, Log out is reachable in the account menu, and the
page's own buttons lie on screen. Forms reveal their fields by choice; the theme toggle
switches to dark and the choice survives a reload."""

from __future__ import annotations

import pytest

from tests.browser.helpers import log_in, record_console_error, run_with_browser, wait_visible
from tests.browser.portal import PASSWORD, USERNAME, make_portal, page_urls
from tests.conftest import grant_custom_code

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(400)]

PHONE = {"width": 390, "height": 844}
#: Swagger UI's page is its own (no site navigation); it must still fit the phone.
OWN_LAYOUT = {"/api/docs/"}

#: What a page offers on a phone: its width, its buttons outside their own scroll boxes
#: that do not fit, and where the navigation stands.
MEASURE = """() => {
  const width = window.innerWidth;
  const offscreen = [...document.querySelectorAll("main .btn")]
    .filter(b => b.offsetParent !== null && !b.closest(".table-responsive"))
    .filter(b => { const r = b.getBoundingClientRect(); return r.left < 0 || r.right > width + 1; })
    .map(b => b.textContent.trim());
  const levels = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].map(h => +h.tagName[1]);
  const skips = levels.filter((level, i) => level > (i ? levels[i - 1] : 0) + 1);
  return {scroll: document.scrollingElement.scrollWidth, width, offscreen, skips,
          h1: document.querySelectorAll("h1").length};
}"""
IN_VIEW = """(el) => { const r = el.getBoundingClientRect();
  return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth; }"""


def open_account_menu(page) -> dict:
    """Open the collapsed navigation and the account menu; what a phone user then sees."""
    toggler = page.locator(".navbar-toggler")
    seen = {"toggler": toggler.is_visible() and toggler.evaluate(IN_VIEW)}
    toggler.click()
    wait_visible(page, "#main-nav.show")
    page.locator("#account-menu .dropdown-toggle").click()
    log_out = page.locator("#log-out")
    log_out.wait_for(state="visible")
    seen["log_out"] = log_out.evaluate(IN_VIEW)
    seen["current"] = page.locator('#main-nav [aria-current="page"]').all_text_contents()
    return seen


def walk(browser, base_url: str, urls: list[str]) -> dict:
    seen: dict = {"console_errors": [], "pages": {}}
    # Reduced motion (Bootstrap then opens the menu without its 350 ms transition,
    # every frame of it drawn): a third of the walk's time, on each page; the
    # layout measured is the same.
    context = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, reduced_motion="reduce"
    )
    context.set_default_timeout(45_000)
    page = context.new_page()
    page.on("console", lambda m: record_console_error(seen, m))
    log_in(page, base_url, USERNAME, PASSWORD)
    for url in urls:
        page.goto(base_url + url, wait_until="load")
        if url == "/api/docs/":
            wait_visible(page, ".swagger-ui .info")
        found = page.evaluate(MEASURE)
        if url not in OWN_LAYOUT:
            found.update(open_account_menu(page))
        seen["pages"][url] = found
    seen["forms"] = reveal_fields(page, base_url)
    seen["theme"] = toggle_theme(page, base_url)
    open_account_menu(page)
    with page.expect_navigation():
        page.click("#log-out")
    seen["after_log_out"] = page.url
    return seen


def reveal_fields(page, base_url: str) -> dict:
    """Which GPU and network fields the new-model form shows, choice by choice."""
    page.goto(base_url + "/models/new/")
    shown = {}
    for mode in ("next", "specific", "count"):
        page.select_option("#id_gpu_mode", mode)
        shown[mode] = [n for n in ("gpu_ids", "gpu_count") if page.is_visible(f"#id_{n}")]
    page.select_option("#id_network_source", "previous")
    shown["previous"] = [
        n for n in ("standard_network", "previous_model", "custom_code")
        if page.is_visible(f"#id_{n}")
    ]  # fmt: skip
    page.select_option("#id_policy", "fixed")
    shown["fixed"] = [n for n in ("step_size", "gamma", "power") if page.is_visible(f"#id_{n}")]
    return shown


def toggle_theme(page, base_url: str) -> dict:
    page.goto(base_url + "/")
    before = page.evaluate("document.documentElement.dataset.bsTheme")
    page.locator(".navbar-toggler").click()
    page.locator("#theme-toggle").click()
    after = page.evaluate("document.documentElement.dataset.bsTheme")
    page.reload()
    return {"before": before, "after": after, "reloaded": page.evaluate(
        "document.documentElement.dataset.bsTheme")}  # fmt: skip


def test_every_page_fits_a_phone(transactional_db, django_user_model, live_server_url):
    urls = page_urls(make_portal(django_user_model))

    seen = run_with_browser(lambda browser: walk(browser, live_server_url, urls), timeout=380)

    for url, found in seen["pages"].items():
        assert found["scroll"] <= found["width"], (url, found)
        assert found["offscreen"] == [], (url, found)
        if url in OWN_LAYOUT:  # Swagger UI's own headings
            continue
        assert found["toggler"] and found["log_out"], (url, found)
        assert found["h1"] == 1 and found["skips"] == [], (url, found)  # headings in order
    assert seen["pages"]["/models/"]["current"] == ["Models"]
    assert seen["pages"]["/jobs/worker-check/new/"]["current"] == ["Worker check"]
    assert seen["forms"] == {
        "next": [], "specific": ["gpu_ids"], "count": ["gpu_count"],
        "previous": ["previous_model"], "fixed": [],
    }  # fmt: skip
    assert seen["theme"] == {"before": "light", "after": "dark", "reloaded": "dark"}
    assert "/accounts/login/" in seen["after_log_out"] or seen["after_log_out"].endswith("/")
    # The one answer of 404 is the page that is meant to be one.
    assert [e for e in seen["console_errors"] if "/no-such-page/" not in e] == []


def without_javascript(browser, base_url: str) -> dict:
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    log_in(page, base_url, USERNAME, PASSWORD)
    page.goto(base_url + "/models/new/")
    fields = ("gpu_ids", "gpu_count", "custom_code", "previous_model", "step_values")
    return {
        "fields": [n for n in fields if page.is_visible(f"#id_{n}")],
        "log_out": page.is_visible("#log-out"),
        "new_dataset": page.is_visible('#main-nav a[href="/datasets/new/"]'),
        "scroll": page.evaluate("document.scrollingElement.scrollWidth"),
    }


def test_without_javascript_every_field_and_link_shows(
    transactional_db, django_user_model, live_server_url
):
    grant_custom_code(django_user_model.objects.create_user(USERNAME, password=PASSWORD))

    seen = run_with_browser(lambda browser: without_javascript(browser, live_server_url))

    assert seen["fields"] == [
        "gpu_ids",
        "gpu_count",
        "custom_code",
        "previous_model",
        "step_values",
    ]
    assert seen["log_out"] and seen["new_dataset"]
    assert seen["scroll"] <= PHONE["width"]
