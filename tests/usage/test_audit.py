"""The audit log: each kind of security-relevant action leaves an event naming who did
what to what, from where; only administrators can read it (page, API, admin)."""

import pytest
from django.contrib.auth.models import Permission

from apps.accounts.models import Membership
from apps.usage.models import AuditEvent, Quota
from tests.datasets.test_api import make
from tests.jobs.helpers import submit_check


def events(action, after=0):
    return list(AuditEvent.objects.filter(action=action, id__gt=after).order_by("id"))


def last_id():
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_logins_failed_logins_and_logouts(client, people):
    client.post("/accounts/login/", {"username": "olivia", "password": "wrong"})
    client.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia"})
    client.post("/accounts/logout/")

    [failed] = events("login_failed")
    assert (failed.actor, failed.target, failed.ip) == (None, "olivia", "127.0.0.1")
    assert "password" not in str(failed.detail)
    [login] = events("login")
    assert (login.actor, login.actor_name, login.target_id) == (
        people.owner, "olivia", str(people.owner.pk),
    )  # fmt: skip
    [logout] = events("logout")
    assert logout.actor == people.owner


def test_api_tokens_created_and_revoked(api_client, people):
    client = api_client.as_user(people.owner)  # issues a token: an event too
    created = client.post("/api/v1/tokens/", {"name": "ci"}, format="json").json()
    assert client.delete(f"/api/v1/tokens/{created['id']}/").status_code == 204

    ci = [e for e in events("token_created") if e.target_id == str(created["id"])]
    assert len(ci) == 1 and ci[0].actor == people.owner
    assert ci[0].detail == {"user": "olivia", "scope": "full"}
    [revoked] = events("token_revoked")
    assert (revoked.target_id, revoked.actor) == (str(created["id"]), people.owner)


def test_sharing_changes_name_before_and_after(api_client, people):
    dataset = make(people.owner, "shared")
    client = api_client.as_user(people.owner)
    response = client.patch(
        f"/api/v1/datasets/{dataset.pk}/", {"visibility": "team", "team": "vision"}, format="json"
    )
    assert response.status_code == 200, response.content
    client.patch(f"/api/v1/datasets/{dataset.pk}/", {"name": "renamed"}, format="json")

    [event] = events("sharing_changed")  # the rename is no sharing change
    assert (event.target_type, event.target_id, event.actor) == (
        "datasets.Dataset", str(dataset.pk), people.owner,
    )  # fmt: skip
    assert event.detail == {"team": [None, people.team.pk], "visibility": ["private", "team"]}


def test_permission_changes(people):
    before = last_id()  # the fixture's memberships are events too
    perm = Permission.objects.get(codename="run_custom_code")
    people.other.user_permissions.add(perm)
    people.other.is_staff = True
    people.other.save()
    Membership.objects.create(team=people.team, user=people.other, role="viewer")
    people.team.run_custom_code = True
    people.team.save()

    changes = [e.detail for e in events("permission_changed", after=before)]
    assert changes[0] == {
        "change": "add", "relation": "user_user_permissions",
        "permission": ["mlmodels.run_custom_code"],
    }  # fmt: skip
    assert changes[1] == {"is_staff": [False, True]}
    assert changes[2] == {"team": "vision", "user": "oscar", "role": "viewer", "change": "added"}
    assert changes[3] == {"run_custom_code": [False, True]}


def test_quota_changes_made_in_the_admin(client, people, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw-root")
    client.force_login(admin)
    response = client.post(
        "/admin/usage/quota/add/",
        {"user": people.owner.pk, "concurrent_jobs": "4", "max_steps": "50"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Quota.objects.get(user=people.owner).concurrent_jobs == 4

    [event] = events("quota_changed")
    assert event.actor == admin
    assert event.detail["concurrent_jobs"] == 4 and event.detail["max_steps"] == 50
    assert event.detail["change"] == "created"


def test_deletes(api_client, people):
    job = submit_check(people.owner, send=False)
    client = api_client.as_user(people.owner)
    client.post(f"/api/v1/jobs/{job.pk}/abort/")
    assert client.delete(f"/api/v1/jobs/{job.pk}/").status_code == 204

    [event] = events("deleted")
    assert (event.target_type, event.target_id, event.actor) == (
        "jobs.Job", str(job.pk), people.owner,
    )  # fmt: skip
    assert event.detail == {"owner_id": people.owner.pk}


@pytest.fixture
def logged(people):
    """A few events to browse."""
    people.team.run_custom_code = True
    people.team.save()
    make(people.owner, "gone").delete()
    return people


def test_admins_browse_and_filter_the_log(client, api_client, logged):
    client.force_login(logged.staff)
    page = client.get("/usage/audit/", {"action": "deleted"})
    assert page.status_code == 200
    assert [e.action for e in page.context["page"]] == ["deleted"]
    every = client.get("/usage/audit/")
    assert {e.action for e in every.context["page"]} >= {"deleted", "permission_changed"}

    listed = api_client.as_user(logged.staff).get(
        "/api/v1/audit/", {"action": "permission_changed", "target_type": "accounts.team"}
    )
    assert listed.status_code == 200
    assert [e["detail"] for e in listed.json()["results"]] == [{"run_custom_code": [False, True]}]


def test_others_cannot_see_the_log(client, api_client, logged):
    client.force_login(logged.team_admin)
    assert client.get("/usage/audit/").status_code == 404
    assert api_client.as_user(logged.team_admin).get("/api/v1/audit/").status_code == 403
    client.force_login(logged.owner)
    assert client.get("/admin/usage/auditevent/").status_code == 302  # to the admin login
