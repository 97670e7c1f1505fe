"""``manage.py ensure_admin``: the generated password is printed once and kept nowhere;
a given one must pass the password validators."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command


@pytest.fixture
def data_dir(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("DIGITS_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("DIGITS_ADMIN_PASSWORD_FILE", raising=False)
    settings.DATA_DIR = tmp_path
    return tmp_path


def ensure_admin() -> str:
    out = io.StringIO()
    call_command("ensure_admin", "--url", "http://digits.test/", stdout=out)
    return out.getvalue()


def test_the_generated_password_is_printed_on_creation_only(db, data_dir):
    first = ensure_admin()
    said = re.search(r"Log in at http://digits.test/ as “admin” with password “([^”]+)”", first)
    assert said and "Created the administrator account" in first, first
    password = said.group(1)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert list(data_dir.iterdir()) == []  # kept nowhere

    again = ensure_admin()
    assert password not in again and "Created" not in again
    assert "An administrator account exists; log in at http://digits.test/." in again


def test_an_old_password_file_is_pointed_out_not_printed(db, data_dir):
    ensure_admin()
    (data_dir / "initial_admin_password").write_text("old-secret-value\n")
    again = ensure_admin()
    assert "old-secret-value" not in again
    assert "initial_admin_password still holds the first password" in again


@pytest.mark.parametrize(
    "weak, message",
    [
        ("password", "This password is too common."),
        ("12345678901", "This password is entirely numeric."),
        ("short", "This password is too short."),
        ("admin123", "The password is too similar to the username."),
    ],
)
def test_a_weak_given_password_is_refused(db, data_dir, monkeypatch, weak, message):
    monkeypatch.setenv("DIGITS_ADMIN_PASSWORD", weak)
    with pytest.raises(CommandError) as excinfo:
        ensure_admin()
    assert str(excinfo.value).startswith("DIGITS_ADMIN_PASSWORD is not accepted: ")
    assert message in str(excinfo.value)
    assert not get_user_model().objects.exists()


def test_a_given_password_is_used_and_not_printed(db, data_dir, monkeypatch):
    monkeypatch.setenv("DIGITS_ADMIN_PASSWORD", "Correct-Horse-Battery-9")
    out = ensure_admin()
    assert "Correct-Horse-Battery-9" not in out
    assert "with the password from DIGITS_ADMIN_PASSWORD" in out
    assert get_user_model().objects.get(username="admin").check_password("Correct-Horse-Battery-9")
