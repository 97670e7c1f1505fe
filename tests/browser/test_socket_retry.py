"""A job page stops reconnecting when the server refuses for good (close codes 44xx).

The job's websocket is answered by Playwright's websocket route, which plays a server
closing every connection with a chosen code. A refusal (4404: no such job, or not
yours) is final: the page must connect once. A transient close (1011: server error)
must be retried with backoff, which also shows the test would see a retrying page.
"""

from __future__ import annotations

import time

import pytest

from apps.jobs import services
from tests.browser.helpers import log_in, run_with_browser
from tests.jobs.helpers import check_params

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

WATCH_SECONDS = 4.0  # the page's backoff retries at 0.5, 1 and 2 s


def connections_after_close(browser, base_url: str, job_id: int, code: int, enough: int) -> int:

    attempts = []

    def refuse(ws):
        attempts.append(ws.url)
        ws.close(code=code, reason="test")

    page = browser.new_page()
    log_in(page, base_url, "rita", "retry-pw-1")
    page.route_web_socket(f"**/ws/jobs/{job_id}/", refuse)
    page.goto(f"{base_url}/jobs/{job_id}/")
    deadline = time.monotonic() + WATCH_SECONDS
    # Watched until ``enough`` connections settle the question, or for the backoff's
    # whole span (a refused page must stay at one).
    while time.monotonic() < deadline and len(attempts) < enough:
        page.wait_for_timeout(200)  # lets Playwright dispatch the route's events
    return len(attempts)


def test_a_refused_job_socket_is_not_retried_and_a_failed_one_is(
    transactional_db, django_user_model, live_server_url
):
    user = django_user_model.objects.create_user("rita", password="retry-pw-1")
    job = services.submit(owner=user, kind="worker.check", params=check_params(steps=1))

    refused = run_with_browser(
        lambda browser: connections_after_close(browser, live_server_url, job.pk, 4404, 2)
    )
    failed = run_with_browser(
        lambda browser: connections_after_close(browser, live_server_url, job.pk, 1011, 3)
    )

    assert refused == 1, f"the page reconnected {refused - 1} time(s) after a 4404"
    assert failed >= 3, f"the page gave up after a transient close ({failed} connection(s))"
