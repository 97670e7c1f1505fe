"""A real browser watches a model train: the loss chart gains points without a reload.

The platform runs as separate processes (uvicorn for pages and websockets, a job
worker on the default and gpu queues); the dataset is scikit-learn's digits built by
the image classification plugin, and LeNet trains on the CPU with metrics every 2
steps. The model page's charts (``static/digits/models.js``) follow the job's event
stream; ``#job[data-chart-points]`` counts the points they drew.
"""

from __future__ import annotations

import threading
import time

import pytest

from apps.jobs import services as jobs
from apps.jobs.models import Job
from tests.conftest import wait_until
from tests.mlmodels.helpers import build_dataset, create_model

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

# Launched like tests/browser/test_live_job.py does (Debian's Chromium, headless); kept
# here so that this test does not depend on that module's internals.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip

CHART_STATE = """() => {
    const series = {};
    for (const id of ["loss-chart", "lr-chart"]) {
        for (const d of Chart.getChart(id).data.datasets) series[d.label] = d.data.length;
    }
    const job = document.getElementById("job");
    return {
        points: Number(job.dataset.chartPoints || 0),
        series: series,
        status: job.querySelector("[data-role=status]").textContent.trim(),
        noReload: window.__noReload === true,
    };
}"""


def poll(fn, timeout: float, interval: float = 0.2, message: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        time.sleep(interval)


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "/accounts/login/" not in page.url, "login failed: " + page.content()[:2000]


def in_a_thread(fn, timeout: float):
    """Run ``fn`` in a fresh thread (Playwright's sync API refuses a running asyncio loop,
    which pytest-asyncio may leave in this one); re-raise what it raised."""
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
    return outcome["value"]


def watch_chart(base_url: str, model_id: int, username: str, password: str) -> dict:
    from playwright.sync_api import sync_playwright

    seen: dict = {"samples": [], "console_errors": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(60_000)
            page = context.new_page()
            page.on(
                "console",
                lambda m: (
                    m.type == "error"
                    # Chromium's automatic /favicon.ico request is not a page error.
                    and not (m.location.get("url") or "").endswith("/favicon.ico")
                    and seen["console_errors"].append(m.text)
                ),
            )
            page.on("pageerror", lambda e: seen["console_errors"].append(str(e)))
            log_in(page, base_url, username, password)
            page.goto(f"{base_url}/models/{model_id}/")
            page.wait_for_selector("#loss-chart")
            # A full load of the document would drop this marker: it proves no reload.
            page.evaluate("window.__noReload = true")

            def sample():
                state = page.evaluate(CHART_STATE)
                seen["samples"].append(state)
                return state

            # Wait for the first points (the job process imports TensorFlow first) ...
            first = poll(lambda: sample()["points"] > 0 and seen["samples"][-1], timeout=240,
                         interval=0.5, message="the chart never got a point")  # fmt: skip
            # ... then for more to arrive over the websocket, with the job still training.
            later = poll(
                lambda: sample()["points"] >= first["points"] + 12 and seen["samples"][-1],
                timeout=120, interval=0.5,
                message=f"the chart stopped growing: {seen['samples'][-3:]}",
            )  # fmt: skip
            seen["first"], seen["later"] = first, later
            seen["final"] = sample()
        finally:
            browser.close()
    return seen


def test_the_loss_chart_grows_while_the_model_trains(
    django_user_model, api_client, start_worker, live_server_url, tmp_path, settings
):
    root = (tmp_path / "data").resolve()
    root.mkdir()
    settings.DIGITS_SERVER_DATA_ROOTS = [root]
    user = django_user_model.objects.create_user("chartie", password="browser-pw-3")
    start_worker(queues=("default", "gpu"), threads=2, DIGITS_SERVER_DATA_ROOTS=str(root),
                 DIGITS_DATA_DIR=str(tmp_path / "worker-var"))  # fmt: skip
    api = api_client.as_user(user)
    dataset = build_dataset(api, root, size=16, per_class=40, name="chart digits")
    # 300 training images in batches of 8, 20 epochs, a chart point every 2 steps: the
    # run lasts far longer than the page is watched.
    created = create_model(api, dataset, "charted", epochs=20, batch_size=8, base_lr=0.01,
                           optimizer="momentum", metrics_every=2)  # fmt: skip

    seen = in_a_thread(
        lambda: watch_chart(live_server_url, created["id"], "chartie", "browser-pw-3"),
        timeout=520,
    )
    jobs.request_abort(Job.objects.get(pk=created["job"]))

    first, later, final = seen["first"], seen["later"], seen["final"]
    print("chart points:", first["points"], "→", later["points"], "→", final["points"])
    assert final["status"] == "Running", "the job was no longer training while the chart grew"
    assert final["noReload"], "the page reloaded: the points must come over the websocket"
    assert later["points"] > first["points"]
    points = [s["points"] for s in seen["samples"]]
    assert points == sorted(points), points
    # The streamed series are drawn, and grow: training loss, accuracy (and validation ones).
    assert later["series"]["train loss"] > first["series"].get("train loss", 0)
    assert later["series"]["train accuracy"] >= 1
    assert later["series"]["learning rate"] >= 1
    assert sum(final["series"].values()) == final["points"]
    assert not seen["console_errors"], seen["console_errors"]
    wait_until(lambda: Job.objects.filter(pk=created["job"], status="aborted").exists(), timeout=60)
