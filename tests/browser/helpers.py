"""What the real-browser tests share: launching Debian's Chromium, running Playwright's
sync API in a thread of its own, logging in, and reading what a page shows."""

from __future__ import annotations

import threading

CHROMIUM = "/usr/bin/chromium"  # Debian's package: browser downloads are blocked
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip


def launch(playwright):
    """A headless Chromium of this machine, from ``sync_playwright()``'s object."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def run_in_thread(fn, timeout: float = 220):
    """Run ``fn`` in a thread of its own; return its value, re-raise what it raised.

    Playwright's sync API refuses to run while an asyncio loop is running in the
    calling thread (pytest-asyncio in auto mode may leave one); a fresh thread has none.
    """
    outcome = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="playwright", daemon=True)
    thread.start()
    thread.join(timeout=timeout)
    if thread.is_alive():
        raise AssertionError("the browser session did not finish in time")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "/accounts/login/" not in page.url, "login failed: " + page.content()[:2000]


#: Whether the first element ``selector`` matches is visible, as Playwright means it: a
#: non-empty box, not ``visibility: hidden``.
_VISIBLE = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return false;
  const box = el.getBoundingClientRect();
  return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== "hidden";
}"""


def wait_visible(page, selector: str) -> None:
    """Wait until ``selector`` shows, checking at every animation frame.

    ``locator.wait_for()`` polls at growing intervals (0, 20, 50, 100, 100, then 500 ms):
    what shows after a 350 ms transition (the phone menu opening) is seen ~0.8 s after the
    click, and a page walk pays that on every page."""
    page.wait_for_function(_VISIBLE, arg=selector, polling="raf")


def progress_value(locator) -> int:
    """The bar's value as the page shows it: aria-valuenow of the .progress element."""
    return int(float(locator.get_attribute("aria-valuenow") or 0))


def record_console_error(seen: dict, message) -> None:
    url = message.location.get("url") or ""
    # The site has no favicon; Chromium's automatic /favicon.ico 404 is not a page error.
    if message.type == "error" and not url.endswith("/favicon.ico"):
        seen["console_errors"].append(f"{message.text} ({url})")


def watched_page(browser, seen: dict, base_url: str, username: str, password: str):
    """A logged-in page whose console errors, page errors and HTTP responses of 400 or more
    are recorded in ``seen["console_errors"]`` and ``seen["bad_responses"]``."""
    context = browser.new_context()
    context.set_default_timeout(45_000)  # a loaded 2-core CI box is slow
    page = context.new_page()
    page.on("console", lambda m: record_console_error(seen, m))
    page.on("pageerror", lambda e: seen["console_errors"].append(str(e)))
    context.on(
        "response",
        lambda r: r.status >= 400 and seen["bad_responses"].append(f"{r.status} {r.url}"),
    )
    log_in(page, base_url, username, password)
    return page
