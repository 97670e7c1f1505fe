"""The Content-Security-Policy in a real browser: every page works under it.

A blocked inline script, handler or style shows up as a console error ("Refused to
execute inline script ... Content Security Policy"); none may appear. The behaviour
moved out of the HTML (confirmations, progress-bar widths) still works.
"""

from __future__ import annotations

import pytest

from apps.jobs.models import Job
from tests.browser.helpers import run_with_browser, wait_visible, watched_page
from tests.core.test_permissions import default_params

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

PAGES = [
    "/", "/jobs/", "/jobs/{job}/", "/datasets/", "/datasets/new/",
    "/datasets/new/image-classification/", "/models/", "/models/new/", "/plugins/",
    "/accounts/", "/accounts/password/", "/api/docs/", "/admin/", "/admin/axes/accessattempt/",
]  # fmt: skip


def visit_pages(browser, base_url: str, job_id: int) -> dict:

    seen: dict = {"console_errors": [], "bad_responses": [], "policies": {}, "dialogs": []}
    page = watched_page(browser, seen, base_url, "cspadmin", "browser-pw-7")
    for path in PAGES:
        path = path.format(job=job_id)
        response = page.goto(base_url + path, wait_until="load")
        seen["policies"][path] = response.headers.get("content-security-policy")
        if path == "/api/docs/":  # Swagger UI built the page from its script file
            wait_visible(page, ".swagger-ui .info")

    page.goto(base_url + "/jobs/")
    bar = page.locator(f'tr[data-job="{job_id}"] [data-role=progress]')
    seen["bar_width"] = bar.evaluate("b => b.style.width")

    page.goto(base_url + f"/jobs/{job_id}/")

    def answer(dialog):
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", answer)
    page.click("form[data-confirm] button[type=submit]")
    # A dismissed confirmation submits nothing: once no request is in flight (a
    # submitted form would be one) the page is where it was.
    page.wait_for_load_state("networkidle")
    seen["url_after_cancel"] = page.url
    return seen


def test_every_page_runs_under_the_policy(transactional_db, django_user_model, live_server_url):
    user = django_user_model.objects.create_superuser("cspadmin", password="browser-pw-7")
    job = Job.objects.create(
        owner=user,
        name="csp",
        kind="worker.check",
        params=default_params(),
        status="done",
        progress=0.42,
    )

    seen = run_with_browser(lambda browser: visit_pages(browser, live_server_url, job.pk))

    assert seen["console_errors"] == [], seen["console_errors"]
    assert seen["bad_responses"] == []
    for path, policy in seen["policies"].items():
        assert policy and "script-src 'self'" in policy and "unsafe-inline" not in policy, path
    assert seen["bar_width"] == "42%"
    assert seen["dialogs"] == ["Delete this job and its artifacts?"]
    assert seen["url_after_cancel"].endswith(f"/jobs/{job.pk}/")  # dismissed: not deleted
    assert Job.objects.filter(pk=job.pk).exists()
