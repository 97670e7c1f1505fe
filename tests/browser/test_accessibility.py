"""axe-core over every page, light and dark: no serious or critical violation (labels,
names, contrast, landmarks, headings…)."""

from __future__ import annotations

import pytest

from tests.browser.helpers import log_in, run_with_browser, wait_visible
from tests.browser.portal import PASSWORD, USERNAME, make_portal, page_urls

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

SERIOUS = ("serious", "critical")
#: Swagger UI's own widget (third-party markup and colours) is left out; the page around it
#: (language, landmarks, the way back) is checked.
THIRD_PARTY = {"/api/docs/": {"exclude": [["#swagger-ui"]]}}


def violations(axe, page, context=None) -> list[str]:
    """The serious and critical violations axe finds: ``"rule: element, …"``."""
    found = axe.run(page, context=context).response["violations"]
    return [
        f"{v['id']}: " + ", ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in found
        if v.get("impact") in SERIOUS
    ]


def audit(browser, base_url: str, urls: list[str]) -> dict:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    found: dict = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
        context.set_default_timeout(45_000)
        page = context.new_page()
        log_in(page, base_url, USERNAME, PASSWORD)
        for url in urls:
            page.goto(base_url + url, wait_until="load")
            if url == "/api/docs/":
                wait_visible(page, ".swagger-ui .info")
            found[f"{scheme} {url}"] = violations(axe, page, THIRD_PARTY.get(url))
        context.close()
    return found


def test_no_page_has_a_serious_accessibility_violation(
    transactional_db, django_user_model, live_server_url
):
    urls = page_urls(make_portal(django_user_model))

    found = run_with_browser(lambda browser: audit(browser, live_server_url, urls), timeout=560)

    assert len(found) == 2 * len(urls)
    bad = {page: v for page, v in found.items() if v}
    assert bad == {}, "\n".join(f"{p}: {v}" for p, v in bad.items())
