"""Who sees whose usage: administrators everybody's; users their own and their teams'.
Anything else is a page not found (as another user's private object is)."""

import pytest


@pytest.mark.parametrize(
    ("query", "viewer", "seen"),
    [
        ({"user": "olivia"}, "owner", 200),
        ({"user": "oscar"}, "owner", 404),
        ({"team": "vision"}, "team_viewer", 200),
        ({"team": "vision"}, "other", 404),
        ({"team": "no-such-team"}, "owner", 404),
        ({"user": "oscar"}, "staff", 200),
        ({"team": "vision"}, "staff", 200),
    ],
)
def test_page_and_api_show_only_what_the_viewer_may_see(
    client, api_client, people, query, viewer, seen
):
    user = getattr(people, viewer)
    client.force_login(user)
    assert client.get("/usage/", query).status_code == seen
    assert api_client.as_user(user).get("/api/v1/usage/", query).status_code == seen
    assert api_client.get("/api/v1/usage/", {**query, "format": "csv"}).status_code == seen


def test_without_a_choice_users_see_their_own_and_staff_everybodys(client, people):
    client.force_login(people.owner)
    assert client.get("/usage/").context["scope"] == "user olivia"
    client.force_login(people.staff)
    assert client.get("/usage/").context["scope"] == "everybody"
