"""What the real-browser tests share: launching Debian's Chromium, running Playwright's
sync API in a thread of its own, logging in, and reading what a page shows."""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading

CHROMIUM = "/usr/bin/chromium"  # Debian's package: browser downloads are blocked
#: The features Playwright's launch disables (``disabledFeatures`` of its
#: ``chromiumSwitches``), repeated: Chromium keeps only the last ``--disable-features``
#: switch, and ours comes after Playwright's (``test_launch.py`` checks the copy).
PLAYWRIGHT_DISABLED_FEATURES = [
    "AvoidUnnecessaryBeforeUnloadCheckSync", "DestroyProfileOnBrowserClose", "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable", "LensOverlay", "MediaRouter", "PaintHolding",
    "ThirdPartyStoragePartitioning", "AvoidCorsURLLoaderRestartOnRedirect",
    "TcpPortRandomizationWin", "OptimizationHints", "NetworkTimeServiceQuerying", "AimEnabled",
    "PreconnectToSearch", "msForceBrowserSignIn", "msEdgeUpdateLaunchServicesPreferredVersion",
]  # fmt: skip
#: The address bar's WebUI popup: Chromium starts a renderer for it with every browser
#: context (about 0.6 s of CPU each; a test run opens over a hundred contexts), and no
#: test types into an address bar.
OMNIBOX_POPUP_FEATURES = ["WebUIOmniboxPopup", "WebUIOmniboxAimPopup", "WebUIOmniboxFullPopup"]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
    "--disable-features=" + ",".join(PLAYWRIGHT_DISABLED_FEATURES + OMNIBOX_POPUP_FEATURES),
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


class _SharedBrowser:
    """One Chromium for the test process's browser tests, in the one thread that owns it
    (Playwright's sync objects belong to the thread that made them): starting Playwright's
    driver and a Chromium costs about a second of CPU, each test of a walk paid it.

    Each test gets the browser for its session and its own contexts (fresh cookies,
    storage and cache), all closed when it ends; a browser that died is launched again."""

    def __init__(self):
        self.jobs: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._serve, name="playwright-shared", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from playwright.sync_api import sync_playwright

        playwright = browser = None
        try:
            while (job := self.jobs.get()) is not None:
                fn, outcome, done = job
                try:
                    if browser is None or not browser.is_connected():
                        playwright = playwright or sync_playwright().start()
                        browser = launch(playwright)
                    outcome["value"] = fn(browser)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                    outcome["error"] = exc
                finally:
                    for context in browser.contexts if browser is not None else []:
                        with contextlib.suppress(Exception):
                            context.close()
                    done.set()
        finally:
            with contextlib.suppress(Exception):
                if browser is not None:
                    browser.close()
                if playwright is not None:
                    playwright.stop()

    def run(self, fn, timeout: float):
        outcome: dict = {}
        done = threading.Event()
        self.jobs.put((fn, outcome, done))
        if not done.wait(timeout):
            return None, True
        return outcome, False

    def stop(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=10)


_shared: _SharedBrowser | None = None
_shared_lock = threading.Lock()


def run_with_browser(fn, timeout: float = 220):
    """``fn(browser)`` in the thread of the process's shared Chromium; return its value,
    re-raise what it raised. The contexts ``fn`` opened are closed after it (each test
    starts from none: no cookies, storage or cache of another). A test that needs its own
    launch arguments or a browser restarted uses ``run_in_thread`` and ``launch``."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = _SharedBrowser()
            atexit.register(_shared.stop)
        shared = _shared
    try:
        outcome, timed_out = shared.run(fn, timeout)
        if timed_out:
            raise AssertionError("the browser session did not finish in time")
    except BaseException:  # timed out, or interrupted (pytest-timeout, Ctrl-C)
        # The thread may still be busy with it: later tests get a browser of their own.
        with _shared_lock:
            if _shared is shared:
                _shared = None
        raise
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
