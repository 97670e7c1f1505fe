"""Logging in and out through the pages; who the API says you are."""

import pytest
from django.test import Client
from rest_framework.test import APIClient


def login(client, username, password, next_url=None):
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post("/accounts/login/", data)


def test_login_page_renders(client):
    response = client.get("/accounts/login/?next=/accounts/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="username"' in page and 'name="password"' in page
    assert 'name="next" value="/accounts/"' in page


def test_login_and_logout(people):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    csrf = page.cookies["csrftoken"].value

    response = client.post(
        "/accounts/login/",
        {"username": "olivia", "password": "pw-olivia", "csrfmiddlewaretoken": csrf},
    )

    assert response.status_code == 302 and response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200 and "olivia" in home.content.decode()

    csrf = home.cookies.get("csrftoken", page.cookies["csrftoken"]).value
    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": csrf})

    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/")["Location"] == "/accounts/login/?next=/"


def test_login_without_csrf_token_is_refused(people):
    client = Client(enforce_csrf_checks=True)
    response = login(client, "olivia", "pw-olivia")
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "username, password, error_on",
    [
        ("olivia", "wrong", "__all__"),
        ("nobody", "pw-olivia", "__all__"),
        ("olivia", "", "password"),
    ],
)
def test_bad_credentials_stay_on_the_login_page(people, client, username, password, error_on):
    response = login(client, username, password)
    assert response.status_code == 200
    assert list(response.context["form"].errors) == [error_on]
    if error_on == "__all__":
        assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_inactive_user_cannot_log_in(people, client):
    people.owner.is_active = False
    people.owner.save()
    assert login(client, "olivia", "pw-olivia").status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "next_url, expected",
    [
        ("/accounts/", "/accounts/"),
        ("https://evil.example/phish", "/"),  # never off-site
    ],
)
def test_login_follows_next_only_on_site(people, client, next_url, expected):
    response = login(client, "olivia", "pw-olivia", next_url)
    assert response.status_code == 302 and response["Location"] == expected


def test_logged_in_user_skips_the_login_page(people, client):
    client.force_login(people.owner)
    assert client.get("/accounts/login/")["Location"] == "/"


def test_logout_needs_post(people, client):
    client.force_login(people.owner)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/").status_code == 200


# --- /api/v1/me/ ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "who, teams, is_staff",
    [
        ("owner", [("vision", "member")], False),
        ("team_viewer", [("vision", "viewer")], False),
        ("team_member", [("vision", "member")], False),
        ("team_admin", [("vision", "admin")], False),
        ("other", [], False),
        ("staff", [], True),
    ],
)
def test_me_returns_teams_and_roles(people, api_client, who, teams, is_staff):
    user = getattr(people, who)
    response = api_client.as_user(user).get("/api/v1/me/")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["username"], body["is_staff"]) == (user.pk, user.username, is_staff)
    assert [(t["slug"], t["role"]) for t in body["teams"]] == teams
    assert all(t["name"] == "Vision" for t in body["teams"])


def test_me_with_several_teams(people, api_client):
    from apps.accounts.models import Membership, Team

    audio = Team.objects.create(name="Audio", slug="audio")
    Membership.objects.create(team=audio, user=people.team_member, role="admin")

    teams = api_client.as_user(people.team_member).get("/api/v1/me/").json()["teams"]

    assert [(t["slug"], t["role"]) for t in teams] == [("audio", "admin"), ("vision", "member")]


def test_me_with_the_browser_session(people):
    client = APIClient()
    assert client.get("/api/v1/me/").status_code == 401
    login(client, "mia", "pw-mia")
    response = client.get("/api/v1/me/")
    assert response.status_code == 200 and response.json()["username"] == "mia"


def test_session_api_writes_need_csrf(people):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(people.owner)
    response = client.post("/api/v1/tokens/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


@pytest.mark.parametrize(
    "who, slugs", [("team_viewer", ["vision"]), ("other", []), ("staff", ["audio", "vision"])]
)
def test_teams_api_lists_the_users_teams(people, api_client, who, slugs):
    from apps.accounts.models import Team

    Team.objects.create(name="Audio", slug="audio")
    client = api_client.as_user(getattr(people, who))

    listed = client.get("/api/v1/teams/").json()["results"]

    assert [t["slug"] for t in listed] == slugs
    if "vision" in slugs:
        members = client.get("/api/v1/teams/vision/").json()["members"]
        assert {(m["user"], m["role"]) for m in members} == {
            ("olivia", "member"), ("victor", "viewer"), ("mia", "member"), ("adam", "admin"),
        }  # fmt: skip
    else:
        assert client.get("/api/v1/teams/vision/").status_code == 404
