"""The tests' Chromium launch: Playwright's own switches kept, the address bar's popup off."""

from __future__ import annotations

import re
from pathlib import Path

import playwright
import pytest

from tests.browser.helpers import (
    OMNIBOX_POPUP_FEATURES,
    PLAYWRIGHT_DISABLED_FEATURES,
    run_with_browser,
)

pytestmark = pytest.mark.browser


def playwright_disabled_features() -> list[str]:
    """``disabledFeatures`` of the installed Playwright driver's ``chromiumSwitches``."""
    lib = Path(playwright.__file__).parent / "driver" / "package" / "lib"
    for source in (lib / "coreBundle.js", lib / "server" / "chromium" / "chromiumSwitches.js"):
        if source.exists():
            text = source.read_text()
            found = re.search(r"disabledFeatures = \[(.*?)\]", text, re.DOTALL)
            if found and "chromiumSwitches" in text:
                return re.findall(r'"([^"]+)"', found.group(1))
    raise AssertionError(f"no chromiumSwitches with disabledFeatures under {lib}")


def test_the_launch_keeps_every_feature_playwright_disables():
    # Chromium keeps the last --disable-features only: ours must repeat Playwright's.
    assert set(playwright_disabled_features()) <= set(PLAYWRIGHT_DISABLED_FEATURES)


def test_a_context_starts_no_address_bar_popup():
    def targets(browser):
        context = browser.new_context()
        context.new_page().set_content("<h1>a page</h1>")
        session = browser.new_browser_cdp_session()
        return session.send("Target.getTargets")["targetInfos"]

    found = run_with_browser(targets, timeout=60)

    assert any(t["type"] == "page" for t in found)
    popups = [t["url"] for t in found if "omnibox" in t["url"]]
    assert popups == [], f"{OMNIBOX_POPUP_FEATURES} still start {popups}"
