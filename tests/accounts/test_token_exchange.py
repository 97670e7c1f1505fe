"""Password-to-token exchange: a script's first token, throttled like the login page."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken

URL = "/api/v1/tokens/exchange/"


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = 3


def exchange(username, password, **extra):
    return APIClient().post(URL, {"username": username, "password": password, **extra}, "json")


def me(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/me/")


def test_exchange_returns_a_new_token_once(people):
    response = exchange("olivia", "pw-olivia")

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "script" and body["scope"] == "full" and body["expires_at"] is None
    assert "password" not in body and "username" not in body
    people.owner.refresh_from_db()
    assert people.owner.last_login is not None
    token = ApiToken.objects.get(pk=body["id"])
    assert token.user == people.owner and token.prefix == body["key"][:8]
    assert me(body["key"]).json()["username"] == "olivia"


def test_exchange_for_a_named_read_only_expiring_token(people):
    response = exchange("olivia", "pw-olivia", name="ci", scope="read", expires_in_days=1)

    assert response.status_code == 201
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert (token.name, token.scope) == ("ci", "read") and token.expires_at is not None


@pytest.mark.parametrize(
    "username, password",
    [("olivia", "wrong"), ("nobody", "pw-olivia"), ("nobody", "wrong")],
)
def test_bad_credentials_get_one_answer(people, username, password):
    response = exchange(username, password)

    assert response.status_code == 400
    assert response.json() == {"detail": "Wrong username or password."}
    assert not ApiToken.objects.exists()


def test_an_inactive_user_gets_no_token(people):
    people.owner.is_active = False
    people.owner.save()
    assert exchange("olivia", "pw-olivia").status_code == 400


def test_missing_fields(db):
    response = APIClient().post(URL, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_needs_no_token_or_csrf_even_with_a_session(people):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(people.other)
    response = client.post(URL, {"username": "olivia", "password": "pw-olivia"}, format="json")
    assert response.status_code == 201
    assert ApiToken.objects.get().user == people.owner  # the credentials', not the session's


def test_throttled_after_the_failure_limit(people):
    assert exchange("olivia", "wrong").status_code == 400
    assert exchange("olivia", "wrong").status_code == 400
    response = exchange("olivia", "wrong")

    assert response.status_code == 429
    assert "Too many failed logins" in response.json()["detail"]
    assert "15 minutes" in response.json()["detail"]
    # Locked: the right password too, with no token issued.
    response = exchange("olivia", "pw-olivia")
    assert response.status_code == 429 and response["Content-Type"] == "application/json"
    assert not ApiToken.objects.exists()
    # Another user is not locked.
    assert exchange("mia", "pw-mia").status_code == 201


def test_exchange_and_login_page_share_the_lockout(people):
    page = Client()
    for _ in range(2):
        assert (
            page.post("/accounts/login/", {"username": "olivia", "password": "x"}).status_code
            == 200
        )
    assert exchange("olivia", "wrong").status_code == 429
    assert (
        page.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia"}).status_code
        == 429
    )


def test_a_successful_exchange_resets_the_count(people):
    for _ in range(3):
        assert exchange("olivia", "wrong").status_code == 400
        assert exchange("olivia", "wrong").status_code == 400
        assert exchange("olivia", "pw-olivia").status_code == 201
