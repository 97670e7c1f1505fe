"""``create_user``, ``create_team``, ``add_member``: provisioning an installation by script."""

import io
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.accounts.models import Membership, Team
from tests.conftest import ROOT

User = get_user_model()
GOOD = "correct horse battery"


def run(*args, stdin: str | None = None) -> str:
    out = io.StringIO()
    if stdin is not None:
        old, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        call_command(*args, stdout=out)
    finally:
        if stdin is not None:
            sys.stdin = old
    return out.getvalue()


def test_create_user_with_a_password_file(db, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(GOOD + "\n")

    out = run("create_user", "ursula", "--email", "u@example.org", "--password-file", secret)

    assert "Created the user “ursula”" in out
    user = User.objects.get(username="ursula")
    assert user.email == "u@example.org" and not user.is_staff and not user.is_superuser
    assert user.check_password(GOOD)


def test_create_staff_user_with_the_password_on_stdin(db):
    out = run("create_user", "sam", "--staff", "--password-stdin", stdin=GOOD + "\n")

    assert "staff user" in out
    user = User.objects.get(username="sam")
    assert user.is_staff and not user.is_superuser and user.check_password(GOOD)


def test_create_user_without_a_password_cannot_log_in(db):
    assert "cannot log in" in run("create_user", "nopass")
    assert not User.objects.get(username="nopass").has_usable_password()


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["olivia"], GOOD, "already exists"),
        (["bad name!"], GOOD, "username"),
        (["ursula", "--email", "not-an-email"], GOOD, "email"),
        (["ursula"], "short", "too short"),
        (["ursula"], "12345678901", "entirely numeric"),
        (["ursula"], "ursula12", "too similar"),
        (["ursula"], "", "password is empty"),
    ],
)
def test_create_user_refuses_bad_input(people, args, stdin, message):
    before = User.objects.count()
    with pytest.raises(CommandError, match=message):
        run("create_user", *args, "--password-stdin", stdin=stdin + "\n")
    assert User.objects.count() == before


def test_create_user_refuses_an_unreadable_password_file(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read the password file"):
        run("create_user", "ursula", "--password-file", tmp_path / "missing")
    assert not User.objects.filter(username="ursula").exists()


def test_the_password_is_never_an_argument():
    """Not even as an option: argv is visible to other users and kept in shell history."""
    result = subprocess.run(
        [sys.executable, "manage.py", "create_user", "x", "--password", GOOD],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "error:" in result.stderr


def test_create_team(db):
    assert "Created the team “Vision lab” (vision)" in run(
        "create_team", "vision", "--name", "Vision lab"
    )
    assert Team.objects.get(slug="vision").name == "Vision lab"
    run("create_team", "audio")
    assert Team.objects.get(slug="audio").name == "audio"


@pytest.mark.parametrize(
    "args, message",
    [
        (["vision"], "already exists"),  # the people fixture's team
        (["other", "--name", "Vision"], "already exists"),
        (["not a slug"], "slug"),
    ],
)
def test_create_team_refuses_bad_input(people, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_team", *args)
    assert Team.objects.count() == 1


def test_add_member(people):
    out = run("add_member", "vision", "oscar", "--role", "viewer")

    assert "Added “oscar” to “vision” as viewer" in out
    assert Membership.objects.get(team=people.team, user=people.other).role == "viewer"
    run("add_member", "vision", "stella")
    assert Membership.objects.get(team=people.team, user=people.staff).role == "member"


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope", "oscar"], "No team “nope”"),
        (["vision", "nobody"], "No user “nobody”"),
        (["vision", "olivia", "--role", "admin"], "already in “vision”, as member"),
    ],
)
def test_add_member_refuses_bad_input(people, args, message):
    before = list(Membership.objects.values_list("team", "user", "role"))
    with pytest.raises(CommandError, match=message):
        run("add_member", *args)
    assert list(Membership.objects.values_list("team", "user", "role")) == before


def test_add_member_refuses_an_unknown_role(people):
    with pytest.raises(CommandError, match="invalid choice"):
        run("add_member", "vision", "oscar", "--role", "owner")
