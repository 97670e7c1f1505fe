"""API tokens: issued once, stored as a SHA-256 only, revocable, expiring."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken


def client_with(key: str, keyword: str = "Token") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {key}")
    return client


def me_status(key: str, keyword: str = "Token") -> int:
    return client_with(key, keyword).get("/api/v1/me/").status_code


def assert_only_hash_stored(token: ApiToken, key: str) -> None:
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert token.prefix == key[: ApiToken.PREFIX_LENGTH]
    stored = [str(getattr(token, f.attname)) for f in ApiToken._meta.concrete_fields]
    assert not any(key in value for value in stored)


# --- REST ----------------------------------------------------------------------------------
def test_create_token_returns_the_key_once(people, api_client):
    client = api_client.as_user(people.owner)

    response = client.post("/api/v1/tokens/", {"name": "ci"}, format="json")

    assert response.status_code == 201
    body = response.json()
    key = body["key"]
    assert body["name"] == "ci" and body["prefix"] == key[:8] and body["expires_at"] is None
    assert_only_hash_stored(ApiToken.objects.get(pk=body["id"]), key)
    # Never again: not in the list, and the list shows only the caller's tokens.
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert {t["name"] for t in listed} == {"tests", "ci"}
    assert all("key" not in t for t in listed)
    assert key not in client.get("/api/v1/tokens/").content.decode()


@pytest.mark.parametrize("keyword", ["Token", "Bearer", "token"])
def test_new_key_authenticates(people, api_client, keyword):
    key = api_client.as_user(people.owner).post("/api/v1/tokens/", {"name": "ci"}).json()["key"]

    response = client_with(key, keyword).get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["username"] == people.owner.username


def test_use_is_recorded(people):
    token, key = ApiToken.issue(people.owner, "ci")
    assert token.last_used_at is None
    assert me_status(key) == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_token_with_expiry(people, api_client):
    expires = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    response = api_client.as_user(people.owner).post(
        "/api/v1/tokens/", {"name": "ci", "expires_at": expires.isoformat()}, format="json"
    )
    assert response.status_code == 201
    assert ApiToken.objects.get(pk=response.json()["id"]).expires_at == expires
    assert me_status(response.json()["key"]) == 200


def test_token_expiring_in_days(people, api_client):
    before = timezone.now()
    response = api_client.as_user(people.owner).post(
        "/api/v1/tokens/", {"name": "ci", "expires_in_days": 7}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert "expires_in_days" not in body and body["scope"] == "full"
    expires = ApiToken.objects.get(pk=body["id"]).expires_at
    assert before + timedelta(days=7) <= expires <= timezone.now() + timedelta(days=7)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 1, "expires_at": "2999-01-01T00:00:00Z"}, "expires_in_days"),
        ({"scope": "admin"}, "scope"),
    ],
)
def test_token_expiry_and_scope_are_validated(people, api_client, body, field):
    response = api_client.as_user(people.owner).post(
        "/api/v1/tokens/", {"name": "ci", **body}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()
    assert not ApiToken.objects.filter(name="ci").exists()


def test_read_only_token_reads_but_changes_nothing(people, api_client):
    created = api_client.as_user(people.owner).post(
        "/api/v1/tokens/", {"name": "dashboard", "scope": "read"}, format="json"
    )
    assert created.status_code == 201 and created.json()["scope"] == "read"
    client = client_with(created.json()["key"])

    assert client.get("/api/v1/me/").status_code == 200
    assert client.head("/api/v1/tokens/").status_code == 200
    assert client.options("/api/v1/tokens/").status_code == 200
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert {t["name"]: t["scope"] for t in listed} == {"dashboard": "read", "tests": "full"}
    for response in [
        client.post("/api/v1/tokens/", {"name": "escalate"}, format="json"),
        client.post("/api/v1/jobs/", {"kind": "worker.check"}, format="json"),
        client.delete(f"/api/v1/tokens/{created.json()['id']}/"),
    ]:
        assert response.status_code == 403
        assert "read-only" in response.json()["detail"]
    assert set(ApiToken.objects.values_list("name", flat=True)) == {"dashboard", "tests"}


def test_existing_tokens_are_full_scope_without_expiry(people):
    token, key = ApiToken.issue(people.owner, "old")
    assert token.scope == "full" and token.expires_at is None
    assert client_with(key).post("/api/v1/tokens/", {"name": "x"}).status_code == 201


def test_token_needs_a_name(people, api_client):
    response = api_client.as_user(people.owner).post("/api/v1/tokens/", {}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_revoked_token_is_refused(people, api_client):
    client = api_client.as_user(people.owner)
    created = client.post("/api/v1/tokens/", {"name": "ci"}).json()
    assert me_status(created["key"]) == 200

    assert client.delete(f"/api/v1/tokens/{created['id']}/").status_code == 204

    assert not ApiToken.objects.filter(pk=created["id"]).exists()
    response = client_with(created["key"]).get("/api/v1/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "revoked" in response.json()["detail"]


@pytest.mark.parametrize(
    "case, status",
    [
        ("valid", 200),
        ("expired", 401),
        ("expires-in-future", 200),
        ("inactive-user", 401),
        ("unknown-key", 401),
        ("empty-key", 401),
    ],
)
def test_which_tokens_authenticate(people, case, status):
    user = people.owner
    expires = {
        "expired": timezone.now() - timedelta(seconds=1),
        "expires-in-future": timezone.now() + timedelta(hours=1),
    }.get(case)
    _, key = ApiToken.issue(user, case, expires_at=expires)
    if case == "inactive-user":
        user.is_active = False
        user.save()
    key = {"unknown-key": key[:-2] + "xx", "empty-key": ""}.get(case, key)

    assert me_status(key) == status


def test_cannot_revoke_someone_elses_token(people, api_client):
    theirs, key = ApiToken.issue(people.other, "theirs")
    client = api_client.as_user(people.staff)  # not even staff, through the API

    assert client.delete(f"/api/v1/tokens/{theirs.pk}/").status_code == 404
    assert me_status(key) == 200


def test_tokens_api_needs_authentication():
    assert APIClient().get("/api/v1/tokens/").status_code == 401
    assert APIClient().post("/api/v1/tokens/", {"name": "x"}).status_code == 401


# --- the account page ----------------------------------------------------------------------
def new_key_on(page: str) -> str | None:
    match = re.search(r'<code id="new-token">([^<]+)</code>', page)
    return match.group(1) if match else None


def test_account_page_creates_and_revokes_tokens(people, client):
    client.force_login(people.owner)

    page = client.post("/accounts/", {"name": "laptop"}).content.decode()

    key = new_key_on(page)
    assert key
    token = ApiToken.objects.get(user=people.owner, name="laptop")
    assert_only_hash_stored(token, key)
    assert me_status(key) == 200
    # Shown once: the next visit lists the token by prefix only.
    page = client.get("/accounts/").content.decode()
    assert new_key_on(page) is None and key not in page
    assert "laptop" in page and f"{token.prefix}…" in page

    response = client.post(f"/accounts/tokens/{token.pk}/revoke/", follow=True)

    assert response.redirect_chain == [("/accounts/", 302)]
    assert "revoked" in response.content.decode()
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert me_status(key) == 401


def test_account_page_shows_and_sets_the_scope(people, client):
    client.force_login(people.owner)
    page = client.post("/accounts/", {"name": "grafana", "scope": "read"}).content.decode()

    assert ApiToken.objects.get(name="grafana").scope == "read"
    assert "<th>Scope</th>" in page and "Read only" in page
    assert '<select class="form-select" name="scope"' in page


def test_account_page_token_with_expiry(people, client):
    client.force_login(people.owner)
    client.post("/accounts/", {"name": "short", "expires_at": "2999-01-01T10:00"})
    token = ApiToken.objects.get(user=people.owner, name="short")
    assert token.expires_at.year == 2999


def test_account_page_form_errors(people, client):
    client.force_login(people.owner)
    response = client.post("/accounts/", {"name": "", "expires_at": "not a date"})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"name", "expires_at"}
    assert new_key_on(response.content.decode()) is None
    assert not ApiToken.objects.filter(user=people.owner).exists()


def test_account_page_cannot_revoke_someone_elses_token(people, client):
    theirs, key = ApiToken.issue(people.other, "theirs")
    client.force_login(people.owner)

    assert client.post(f"/accounts/tokens/{theirs.pk}/revoke/").status_code == 404
    assert client.get(f"/accounts/tokens/{theirs.pk}/revoke/").status_code == 405
    assert me_status(key) == 200


def test_account_page_needs_login(client):
    response = client.get("/accounts/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/"
