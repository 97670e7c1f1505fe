"""A real browser watches a job run: the pages update live, without a reload.

Headless Debian Chromium driven by Playwright (sync API). The platform runs as
separate processes on the test database: uvicorn (HTTP + websockets, with
channels-redis) and a job worker (dramatiq, Redis broker).
"""

from __future__ import annotations

import time

import pytest

from apps.jobs import services
from apps.jobs.models import Job
from tests.browser.helpers import (
    log_in,
    progress_value,
    run_in_thread,
    run_with_browser,
    watched_page,
)
from tests.conftest import wait_until
from tests.jobs.helpers import submit_check

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

STEPS = 25
STEP_SECONDS = 0.4


# The predicates given to wait_until below call Playwright: its events (console
# messages, websockets) are only dispatched while a Playwright call runs.


def watch_job_live(browser, base_url: str, job_id: int, username: str, password: str) -> dict:

    seen: dict = {"detail": [], "home": [], "console_errors": [], "bad_responses": []}
    page = watched_page(browser, seen, base_url, username, password)

    # --- the home page: the job's row follows the job ---------------------
    home = page.context.new_page()
    home.on("pageerror", lambda e: seen["console_errors"].append(str(e)))
    home.goto(base_url + "/")
    row = home.locator(f'#job-list tr[data-job="{job_id}"]')
    row.wait_for()
    home_bar = row.locator(".progress")

    # --- the job page, opened while the job is queued or just starting ----
    page.goto(f"{base_url}/jobs/{job_id}/")
    # A full load of the document would reset this marker: it proves no reload.
    page.evaluate("window.__noReload = true")
    home.evaluate("window.__noReload = true")
    bar = page.locator("#job .progress")
    badge = page.locator("#job [data-role=status]").first
    log = page.locator("#job [data-role=log] > div")

    def sample():
        seen["detail"].append(progress_value(bar))
        seen["home"].append(progress_value(home_bar))

    def expect(predicate, timeout: float, what: str):
        try:
            wait_until(predicate, timeout=timeout, interval=0.2)
        except AssertionError:
            raise AssertionError(
                f"{what} within {timeout} s; progress seen on the job page "
                f"{sorted(set(seen['detail']))}, on the home page {sorted(set(seen['home']))}"
            ) from None

    # Progress must move on its own, through at least three distinct values
    # strictly between 0 and 100 (events arriving, not the final page state).
    def moving():
        sample()
        mid = {v for v in seen["detail"] if 0 < v < 100}
        return len(mid) >= 3

    expect(moving, 60, "the job page's progress did not move")
    expect(lambda: log.count() >= 2, 30, "no log lines appeared")
    first_lines = log.all_text_contents()

    # The home page row moves too (the job list websocket).
    def home_moving():
        sample()
        mid = {v for v in seen["home"] if 0 < v < 100}
        return len(mid) >= 2

    expect(home_moving, 60, "the home page's job row did not move")

    # Finally the job finishes: badge Done, bar full, final log line shown.
    def done():
        sample()
        return badge.text_content().strip() == "Done"

    expect(done, 90, "the job page's badge never showed Done")
    home_badge = row.locator("[data-role=status]")
    expect(
        lambda: home_badge.text_content().strip() == "Done",
        30,
        "the home row never showed Done",
    )
    sample()
    expect(
        lambda: any("Mean throughput" in t for t in log.all_text_contents()), 30,
        "the final log line did not appear",
    )  # fmt: skip
    seen["final_detail"] = progress_value(bar)
    seen["final_width"] = page.locator("#job [data-role=progress]").evaluate("el => el.style.width")
    seen["final_home"] = progress_value(home_bar)
    seen["badge_class"] = badge.get_attribute("class")
    seen["first_lines"] = first_lines
    seen["log_lines"] = log.all_text_contents()
    seen["metric_rows"] = page.locator("#job [data-role=metrics] tr").all_text_contents()
    seen["no_reload"] = page.evaluate("window.__noReload === true") and home.evaluate(
        "window.__noReload === true"
    )
    return seen


def test_job_pages_update_live_in_a_real_browser(
    transactional_db, django_user_model, start_worker, live_server_url
):
    user = django_user_model.objects.create_user("bella", password="browser-pw-1")
    start_worker()
    job = services.submit(
        owner=user, kind="worker.check", name="browser check",
        params={"queue": "default", "steps": STEPS, "step_seconds": STEP_SECONDS, "matrix_size": 32,
                "use_tensorflow": False, "fail_at_step": None},
    )  # fmt: skip

    seen = run_with_browser(
        lambda browser: watch_job_live(browser, live_server_url, job.pk, "bella", "browser-pw-1")
    )

    print(
        "progress seen:",
        sorted(set(seen["detail"])),
        sorted(set(seen["home"])),
        len(seen["log_lines"]),
    )
    assert seen["no_reload"], "a page reloaded: the updates must come over the websocket"
    detail = seen["detail"]
    # Monotonic non-decreasing, and it really rose while we watched.
    assert detail == sorted(detail), detail
    assert len({v for v in detail if 0 < v < 100}) >= 3, detail
    assert seen["final_detail"] == 100 and seen["final_width"] == "100%"
    assert (
        seen["home"] == sorted(seen["home"]) and len({v for v in seen["home"] if 0 < v < 100}) >= 2
    ), seen["home"]
    assert seen["final_home"] == 100
    assert "bg-success" in seen["badge_class"]
    assert any("CPUs" in line for line in seen["log_lines"]), seen["log_lines"]
    # The live metrics table names its series and units for people, as the pages do.
    names = [row.split(" step ")[0] for row in seen["metric_rows"]]
    assert any(n.startswith("GFLOPS") for n in names), seen["metric_rows"]
    assert any(n.startswith("CPU percent") and "%" in n for n in names), seen["metric_rows"]
    assert not any("_" in n for n in names), seen["metric_rows"]
    assert len(seen["log_lines"]) > len(seen["first_lines"]) or any(
        "Mean throughput" in line for line in seen["log_lines"]
    )
    assert not seen["console_errors"], (seen["console_errors"], seen["bad_responses"])
    assert wait_until(lambda: Job.objects.filter(pk=job.pk, status="done").exists(), timeout=10)


IDLE_SECONDS = 12


def watch_idle_job(
    browser, base_url: str, job_id: int, username: str, password: str, send_event
) -> dict:
    """Open a job page, stay idle, then let one event arrive; count the page's websockets."""

    seen: dict = {"sockets": [], "closed": []}
    context = browser.new_context()
    context.set_default_timeout(45_000)
    page = context.new_page()
    log_in(page, base_url, username, password)

    def on_socket(ws):
        # The home page shown after logging in has a job-list socket of its own,
        # whose opening and closing may be reported late: watch the job's only.
        if not ws.url.endswith(f"/ws/jobs/{job_id}/"):
            return
        seen["sockets"].append(ws.url)
        ws.on("close", lambda _ws: seen["closed"].append(time.monotonic()))

    page.on("websocket", on_socket)
    with page.expect_websocket():
        page.goto(f"{base_url}/jobs/{job_id}/")
    # Longer than any client or server timeout that idles a socket out. (Waiting
    # through Playwright, not time.sleep, so that its events are dispatched.)
    page.wait_for_timeout(IDLE_SECONDS * 1000)
    send_event()
    log = page.locator("#job [data-role=log] > div", has_text="hello after a quiet spell")
    log.wait_for()
    seen["badge"] = page.locator("#job [data-role=status]").first.text_content().strip()
    return seen


def test_an_idle_job_page_keeps_its_websocket(transactional_db, django_user_model, live_server_url):
    """A job page left open on a quiet job keeps one websocket and still gets new events."""
    from apps.jobs import events

    user = django_user_model.objects.create_user("ivy", password="browser-pw-2")
    # No worker: the job stays queued and its page quiet.
    job = services.submit(
        owner=user, kind="worker.check", name="quiet check",
        params={"queue": "default", "steps": 1, "step_seconds": 0.0, "matrix_size": 8,
                "use_tensorflow": False, "fail_at_step": None},
    )  # fmt: skip

    def append_event():
        from django.db import connection

        try:
            message = "hello after a quiet spell"
            events.append(
                job.pk, [events.event("log", level="info", message=message, stream="system")]
            )
        finally:
            connection.close()

    def send_event():
        # Called in the Playwright thread, where an event loop runs: the ORM needs another.
        run_in_thread(append_event)

    seen = run_with_browser(
        lambda browser: watch_idle_job(
            browser, live_server_url, job.pk, "ivy", "browser-pw-2", send_event
        )
    )

    assert seen["badge"] == "Queued"
    assert not seen["closed"], (
        f"the server closed the page's websocket {len(seen['closed'])} time(s)"
    )
    assert len(seen["sockets"]) == 1, seen["sockets"]


def watch_facts(browser, base_url: str, job_id: int, username: str, password: str, start) -> dict:
    """Open a queued job's page, start a worker, watch worker and attempts fill in."""

    seen: dict = {"console_errors": [], "bad_responses": []}
    page = watched_page(browser, seen, base_url, username, password)
    page.goto(f"{base_url}/jobs/{job_id}/")
    page.evaluate("window.__noReload = true")
    facts = "() => ['worker', 'attempts', 'queue-position'].map((r) => " \
            "document.querySelector(`#job [data-role=${r}]`).textContent.trim())"  # fmt: skip
    seen["queued"] = page.evaluate(facts)
    start()
    wait_until(lambda: page.evaluate(facts)[0] not in ("—", ""), timeout=60,
               interval=0.3, message="the worker never appeared")  # fmt: skip
    seen["running"] = page.evaluate(facts)
    seen["no_reload"] = page.evaluate("window.__noReload === true")
    return seen


def test_the_job_page_shows_its_place_in_the_queue_then_its_worker_live(
    transactional_db, django_user_model, start_worker, live_server_url
):
    user = django_user_model.objects.create_user("quinn", password="browser-pw-8")
    job = services.submit(
        owner=user, kind="worker.check", name="queued check",
        params={"queue": "default", "steps": 20, "step_seconds": 0.3, "matrix_size": 8,
                "use_tensorflow": False, "fail_at_step": None},
    )  # fmt: skip

    seen = run_with_browser(
        lambda browser: watch_facts(
            browser, live_server_url, job.pk, "quinn", "browser-pw-8", start_worker
        )
    )

    assert seen["queued"] == ["—", "0", "· position 1 in the queue"], seen["queued"]
    worker, attempts, position = seen["running"]
    assert worker == Job.objects.get(pk=job.pk).worker and attempts == "1" and position == ""
    assert seen["no_reload"] and not seen["console_errors"], seen


SCRIPT_DELAY = 2.5  # seconds: more than the test's tolerance for the age shown


def watch_heartbeat(
    browser, base_url: str, job_id: int, username: str, password: str, beat
) -> dict:
    """The heartbeat's age on the job page: ticking, turning stale, then fresh after a beat."""

    seen: dict = {"console_errors": [], "bad_responses": []}
    page = watched_page(browser, seen, base_url, username, password)

    def slow_script(route):  # the page's script arrives late, as on a loaded machine
        time.sleep(SCRIPT_DELAY)
        route.continue_()

    page.route("**/digits/jobs.js", slow_script)
    page.goto(f"{base_url}/jobs/{job_id}/")
    cell = page.locator("#job [data-role=heartbeat]")

    def age() -> int:
        return int(cell.inner_text().split(" s ago")[0])

    seen["first"] = age()
    seen["first_at"] = time.monotonic()
    seen["ticked"] = wait_until(
        lambda: age() >= seen["first"] + 2 and age(), timeout=10,
        message="the heartbeat's age did not tick",
    )  # fmt: skip
    seen["stale"] = wait_until(
        lambda: "stopped responding" in cell.inner_text() and cell.inner_text(),
        timeout=20, message="an old heartbeat was not shown as stale",
    )  # fmt: skip
    seen["stale_class"] = cell.get_attribute("class")
    beat()  # the worker beats again: the page reads it within its 5 s refresh
    seen["fresh"] = wait_until(
        lambda: "stopped" not in cell.inner_text() and age() < 8 and cell.inner_text(),
        timeout=15, message="a new heartbeat did not reach the page",
    )  # fmt: skip
    return seen


def test_the_job_page_heartbeat_age_ticks_turns_stale_and_follows_new_beats(
    transactional_db, django_user_model, live_server_url
):
    from datetime import timedelta

    from django.utils import timezone

    user = django_user_model.objects.create_user("hattie", password="browser-pw-9")
    job = submit_check(user, send=False)
    # Running on a worker that beat 3 s ago (no worker here: nothing beats until the test).
    Job.objects.filter(pk=job.pk).update(
        status="running", worker="w:1", attempts=1,
        heartbeat_at=timezone.now() - timedelta(seconds=3),
    )  # fmt: skip
    beat_at = time.monotonic() - 3

    def beat():  # (Playwright's thread runs an event loop: the ORM from another thread)
        run_in_thread(lambda: Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now()))

    seen = run_with_browser(
        lambda browser: watch_heartbeat(
            browser, live_server_url, job.pk, "hattie", "browser-pw-9", beat
        )
    )

    # The age shown is the beat's real age when read, however long the browser took to start
    # and the page's script to arrive (an age counted from when the script ran was too young
    # by that delay: seen as 2.6 s on a slow host, and made certain here by SCRIPT_DELAY).
    assert abs(seen["first"] - (seen["first_at"] - beat_at)) <= 1.5, seen
    assert "(the worker stopped responding)" in seen["stale"]  # past DIGITS_JOB_STALE_SECONDS
    assert "text-danger" in seen["stale_class"]
    assert not seen["console_errors"], seen["console_errors"]
