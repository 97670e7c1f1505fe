"""A user (staff or not) changes their own password from the account page."""

from django.test import Client


def change(client, old, new1, new2=None):
    return client.post(
        "/accounts/password/",
        {"old_password": old, "new_password1": new1, "new_password2": new2 or new1},
    )


def test_the_account_page_links_to_the_password_change(people, client):
    client.force_login(people.other)
    assert 'href="/accounts/password/"' in client.get("/accounts/").content.decode()


def test_a_non_staff_user_changes_their_password(people):
    client = Client()
    assert client.post("/accounts/login/", {"username": "oscar", "password": "pw-oscar"})
    assert client.get("/accounts/password/").status_code == 200

    response = change(client, "pw-oscar", "a-Much-longer-secret-42")

    assert response.status_code == 302 and response["Location"] == "/accounts/"
    assert "Your password has been changed." in client.get("/accounts/").content.decode()
    people.other.refresh_from_db()
    assert people.other.check_password("a-Much-longer-secret-42")
    assert client.get("/").status_code == 200  # this session stays logged in


def test_the_old_password_and_the_validators_are_checked(people, client):
    client.force_login(people.other)

    wrong_old = change(client, "not-it", "a-Much-longer-secret-42")
    assert wrong_old.status_code == 200 and "old_password" in wrong_old.context["form"].errors
    too_common = change(client, "pw-oscar", "password")
    assert too_common.status_code == 200
    assert "This password is too common." in too_common.content.decode()
    people.other.refresh_from_db()
    assert people.other.check_password("pw-oscar")


def test_the_password_page_needs_login(client):
    assert (
        client.get("/accounts/password/")["Location"] == "/accounts/login/?next=/accounts/password/"
    )
