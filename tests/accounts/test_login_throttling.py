"""Login throttling (django-axes): lockout after repeated failures, a clear page, unlocking."""

import json
import os
import subprocess
import sys

import pytest
from django.test import Client

from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = 3


def login(client, username, password, url="/accounts/login/"):
    return client.post(url, {"username": username, "password": password})


def fail(client, username, times, url="/accounts/login/"):
    for _ in range(times):
        response = login(client, username, "wrong", url)
        if response.status_code != 200:
            return response
    return response


def test_locked_out_after_the_limit_even_with_the_right_password(people, client):
    assert fail(client, "olivia", 2).status_code == 200
    response = fail(client, "olivia", 1)

    assert response.status_code == 429
    page = response.content.decode()
    assert 'id="locked-out"' in page and "Too many failed logins" in page
    assert "15 minutes" in page and 'name="password"' in page  # still the login page

    response = login(client, "olivia", "pw-olivia")
    assert response.status_code == 429 and "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_admin_login_is_throttled_too(people, client):
    response = fail(client, "stella", 3, url="/admin/login/")

    assert response.status_code == 429 and "Too many failed logins" in response.content.decode()
    assert login(client, "stella", "pw-stella", "/admin/login/").status_code == 429
    # The lock is on the user, whichever login page is used.
    assert login(client, "stella", "pw-stella").status_code == 429


def test_a_successful_login_resets_the_count(people):
    client = Client()
    for _ in range(3):  # 2 failures, then success: never reaches the limit of 3
        fail(client, "olivia", 2)
        assert login(client, "olivia", "pw-olivia").status_code == 302
        client.logout()


def test_the_lock_is_per_user_and_address(people, client):
    fail(client, "olivia", 3)

    assert login(client, "mia", "pw-mia").status_code == 302
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    assert login(elsewhere, "olivia", "pw-olivia").status_code == 302


def test_api_tokens_keep_working_while_the_password_login_is_locked(people, client, api_client):
    fail(client, "olivia", 3)
    assert api_client.as_user(people.owner).get("/api/v1/me/").status_code == 200


def test_staff_unlock_a_user_in_the_admin(people, client):
    from axes.models import AccessAttempt

    fail(client, "olivia", 3)
    attempt = AccessAttempt.objects.get(username="olivia")

    admin = Client()
    admin.force_login(people.staff)
    people.staff.is_superuser = True
    people.staff.save()
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "olivia" in listing.content.decode()
    response = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302

    assert login(client, "olivia", "pw-olivia").status_code == 302


def test_limits_come_from_the_environment():
    env = {**os.environ, "DIGITS_LOGIN_FAILURE_LIMIT": "7", "DIGITS_LOGIN_COOLOFF_MINUTES": "30"}
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(), "
        "s.AXES_RESET_ON_SUCCESS]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**env, "DJANGO_SETTINGS_MODULE": "digits_site.settings"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [7, 1800.0, True]
