"""Benchmark: page weight and load time of the portal's main pages, cold and warm cache.

    python scripts/with_test_services.py python -m pytest bench/pages.py -q -s -p no:cacheprovider
    DIGITS_BENCH_CODE=/tmp/old-checkout ...   # the same against another checkout's code

A test portal (tests/browser/portal.py) is served by uvicorn as ``make run`` serves it:
with ``DIGITS_STATIC_MANIFEST=1`` after ``collectstatic`` when the code has that setting
(the hashed, compressed files), straight from the finders otherwise (the code before
issue 13). Headless Chromium logs in and opens each page in a fresh context (cold: empty
cache) and again in the same context (warm). Per page it prints the bytes received over
the network (encoded, i.e. after compression; CDP ``Network.loadingFinished``) and the
time to the load event (median of 3). Results: docs/performance.md.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

import pytest

from tests import conftest
from tests.browser.helpers import launch, log_in, run_in_thread
from tests.browser.portal import PASSWORD, USERNAME, make_portal
from tests.conftest import start_web

start_process = conftest.start_process  # the fixture, here too

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

PAGES = [
    "/", "/datasets/", "/datasets/{dataset}/", "/models/", "/models/new/", "/models/{model}/",
    "/evaluations/{evaluation}/", "/jobs/", "/api/docs/",
]  # fmt: skip
ROUNDS = 3
LOAD_MS = (
    "() => { const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd; }"
)


def visit(page, received: dict, url: str) -> tuple[int, float]:
    before = received["bytes"]
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return received["bytes"] - before, page.evaluate(LOAD_MS)


def measure(base_url: str, urls: list[str]) -> dict:
    from playwright.sync_api import sync_playwright

    results: dict = {url: {"cold": [], "warm": []} for url in urls}
    with sync_playwright() as p:
        browser = launch(p)
        try:
            for _ in range(ROUNDS):
                for url in urls:
                    context = browser.new_context(viewport={"width": 1280, "height": 800})
                    page = context.new_page()
                    log_in(page, base_url, USERNAME, PASSWORD)
                    cdp = context.new_cdp_session(page)
                    received = {"bytes": 0}
                    cdp.on("Network.loadingFinished", lambda e, r=received: r.__setitem__(
                        "bytes", r["bytes"] + int(e.get("encodedDataLength", 0))))  # fmt: skip
                    cdp.send("Network.enable")
                    cdp.send("Network.clearBrowserCache")  # what logging in cached
                    for state in ("cold", "warm"):
                        results[url][state].append(visit(page, received, base_url + url))
                    context.close()
        finally:
            browser.close()
    return results


def test_page_weight_and_load_time(
    transactional_db, django_user_model, start_process, tmp_path, monkeypatch
):
    code = Path(os.environ.get("DIGITS_BENCH_CODE") or Path(__file__).resolve().parent.parent)
    env = {"PYTHONPATH": f"{code}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if "DIGITS_STATIC_MANIFEST" in (code / "digits_site" / "settings.py").read_text():
        env.update(DIGITS_STATIC_MANIFEST="1", DIGITS_STATIC_ROOT=str(tmp_path / "static"))
        collect = start_process(
            str(code / "manage.py"), "collectstatic", "--noinput", env=env, name="collect"
        )
        assert collect.proc.wait(timeout=300) == 0, collect.log()[-2000:]
    for name, value in env.items():  # the web process inherits them
        monkeypatch.setenv(name, value)
    _, base_url = start_web(start_process)
    ids = make_portal(django_user_model)
    urls = [u.format(**ids) for u in PAGES]

    results = run_in_thread(lambda: measure(base_url, urls), timeout=850)

    print(f"\ncode: {code}  manifest: {'DIGITS_STATIC_MANIFEST' in env}", file=sys.stderr)
    print("| page | cold KB | cold load ms | warm KB | warm load ms |", file=sys.stderr)
    for url, found in results.items():
        cold_kb = statistics.median(b for b, _ in found["cold"]) / 1024
        warm_kb = statistics.median(b for b, _ in found["warm"]) / 1024
        cold_ms = statistics.median(t for _, t in found["cold"])
        warm_ms = statistics.median(t for _, t in found["warm"])
        print(f"| `{url}` | {cold_kb:.0f} | {cold_ms:.0f} | {warm_kb:.0f} | {warm_ms:.0f} |",
              file=sys.stderr)  # fmt: skip
        assert cold_kb > 0
